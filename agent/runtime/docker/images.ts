/** Images on the engine: whether one is there, which ones containers use, removing one. */
import { LABELS, type ImageRemoval, type ImagesInUse } from '../container-runtime.js';
import { OK, type EngineClient } from './engine-client.js';
import { engineError, isNotFound, statusCodeOf } from './engine-errors.js';
import type { ListedContainer } from './container-listing.js';
import { encodeImagePath } from './image-refs.js';

export async function hasImage(engine: EngineClient, image: string): Promise<boolean> {
  const what = `inspect image ${image}`;
  try {
    // Through the modem: dockerode's image inspect passes no abort signal on (5.0.1), so a call
    // past its deadline would keep its socket open on a hung engine.
    await engine.call(what, engine.deadlines.queryMs, (abortSignal) =>
      engine.dial({ path: `/images/${encodeImagePath(image)}/json`, method: 'GET', statusCodes: OK }, abortSignal),
    );
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw engineError(what, err);
  }
}

/**
 * Every image a container of the engine refers to, whoever made it: the image it runs, and those
 * our labels keep beside it.
 */
export async function imagesInUse(engine: EngineClient): Promise<ImagesInUse> {
  let infos: ListedContainer[];
  try {
    // Every container of the engine, not only this node's: another agent's, or one that is not ours, uses images too.
    infos = await engine.call('list containers', engine.deadlines.queryMs, (abortSignal) => engine.docker.listContainers({ all: true, abortSignal }));
  } catch (err) {
    throw engineError('list containers', err);
  }
  const images = new Set<string>();
  for (const info of infos) {
    if (info.Image) images.add(info.Image);
    const labels = info.Labels ?? {};
    for (const key of [LABELS.image, LABELS.previousImage]) {
      const image = labels[key];
      if (image) images.add(image);
    }
  }
  return { images };
}

export async function removeImage(engine: EngineClient, image: string): Promise<ImageRemoval> {
  const what = `remove image ${image}`;
  try {
    // Never forced: an image a container uses (any container, ours or not) stays.
    await engine.call(what, engine.deadlines.removeMs, (abortSignal) => engine.docker.getImage(encodeImagePath(image)).remove({ abortSignal }));
    return 'removed';
  } catch (err) {
    if (isNotFound(err)) return 'absent';
    if (statusCodeOf(err) === 409) return 'in-use';
    throw engineError(what, err);
  }
}
