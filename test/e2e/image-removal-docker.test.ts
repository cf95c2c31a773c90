/**
 * What image retention asks of the real engine: which images its containers refer to (the image
 * they run and the ones our labels keep), and a removal that is never forced, so an image a
 * container uses stays.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { cleanupNode, describeDocker, sleeperSpec } from '../helpers/docker.js';
import { makeImage, run } from '../helpers/made-image.js';

const BASE = '127.0.0.1:5000/busybox:1';
const tag = randomUUID().slice(0, 8);
/** An image of its own (committed, one tag): the engine refuses to remove it while a container uses it. */
const IMAGE = `tether-test/retention:${tag}`;
/** A second tag of busybox's image. */
const KEPT = `tether-test/retention-kept:${tag}`;
const NODE_ID = `retention-${tag}`;

describeDocker('image removal on the real engine', () => {
  const runtime = new DockerRuntime();

  beforeAll(async () => {
    await run('docker', ['pull', '-q', BASE]);
    await makeImage(BASE, IMAGE, `echo ${tag} > /made`);
    await run('docker', ['tag', BASE, KEPT]);
  }, 60_000);

  afterAll(async () => {
    await cleanupNode(NODE_ID);
    await run('docker', ['rmi', IMAGE, KEPT]).catch(() => undefined);
  });

  it('lists the images containers run and keep, refuses to remove one in use, removes it once unused', async () => {
    const id = await runtime.createContainer({
      nodeId: NODE_ID,
      replicaId: 'r1',
      service: 'svc',
      specHash: '0123456789abcdef',
      name: `tether-${NODE_ID}-r1`,
      spec: sleeperSpec(IMAGE),
      publishAddress: null,
      previousImage: KEPT,
      pulledImages: [IMAGE, KEPT],
    });
    const inUse = await runtime.imagesInUse();
    expect(inUse.images.has(IMAGE)).toBe(true);
    expect(inUse.images.has(KEPT)).toBe(true);
    const [listed] = await runtime.listContainers(NODE_ID);
    expect(listed).toMatchObject({ id, image: IMAGE, previousImage: KEPT, pulledImages: [IMAGE, KEPT] });

    // A container (even a stopped one) uses it: the engine keeps it.
    expect(await runtime.removeImage(IMAGE)).toBe('in-use');
    await runtime.removeContainer(id);
    expect(await runtime.removeImage(IMAGE)).toBe('removed');
    expect(await runtime.hasImage(IMAGE)).toBe(false);
    expect(await runtime.removeImage(IMAGE)).toBe('absent');
    // Removing a second tag of an image removes only that tag: the image stays under the others.
    expect(await runtime.removeImage(KEPT)).toBe('removed');
    expect(await runtime.hasImage(BASE)).toBe(true);
  }, 60_000);
});
