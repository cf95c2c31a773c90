/**
 * Pull progress from the real engine: an image with a layer the engine does not have is pushed to
 * the test registry, then pulled through the Docker runtime with a tally; what the tally makes of
 * the engine's progress lines must add up to that layer's download.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { PullProgressTally } from '../../agent/runtime/pull-progress.js';
import { describeDocker } from '../helpers/docker.js';
import { makeRegistryOnlyImage, run } from '../helpers/made-image.js';

const BASE = '127.0.0.1:5000/busybox:1';
const IMAGE = `127.0.0.1:5000/tether-pull-progress:${randomUUID().slice(0, 8)}`;
/** Random, so that compression leaves it about this size on the wire. */
const BLOB_BYTES = 3_000_000;

describeDocker('pull progress from the real engine', () => {
  beforeAll(async () => {
    // Gone from the engine: its new layer has to come from the registry; busybox's is still here.
    await makeRegistryOnlyImage(BASE, IMAGE, `head -c ${BLOB_BYTES} /dev/urandom > /blob`);
  }, 120_000);

  afterAll(async () => {
    await run('docker', ['rmi', IMAGE]).catch(() => undefined);
  });

  it('counts the new layer downloaded whole and every layer done, from the engine lines', async () => {
    const tally = new PullProgressTally();
    await new DockerRuntime().pullImage(IMAGE, null, undefined, tally);
    const done = tally.snapshot();
    // busybox's layer already exists; the committed one is downloaded.
    expect(done.layersTotal).toBe(2);
    expect(done.layersDone).toBe(2);
    expect(done.bytesTotal).not.toBeNull();
    expect(done.bytesDone).toBe(done.bytesTotal);
    expect(done.bytesDone).toBeGreaterThan(BLOB_BYTES * 0.9);
    expect(done.bytesDone).toBeLessThan(BLOB_BYTES * 1.2);
  }, 60_000);
});
