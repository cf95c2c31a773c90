/**
 * Gate for tests that need the real Docker engine. Locally, no engine means the tests are skipped;
 * in CI it means they fail, so a broken test machine can never pass as green.
 */
import Docker from 'dockerode';
import { describe, it } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';

export const DOCKER_SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';
const PING_TIMEOUT_MS = 3_000;

export const docker = new Docker({ socketPath: DOCKER_SOCKET });

export async function dockerAvailable(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      docker.ping().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

// Decided before any test is collected: describeDocker must already be the right function.
const available = await dockerAvailable();

const failInCi = (name: string, _fn: () => void): void => {
  describe(name, () => {
    it('needs a Docker engine', () => {
      throw new Error('no Docker engine reachable (CI=true): run scripts/test-env.sh');
    });
  });
};

export const describeDocker: (name: string, fn: () => void) => void = available
  ? describe
  : process.env.CI === 'true'
    ? failInCi
    : describe.skip;

/** Force-removes every container labelled with this node id (any state). */
export async function cleanupNode(nodeId: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.nodeId}=${nodeId}`] } });
  await Promise.all(
    containers.map(async (c) => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    }),
  );
}
