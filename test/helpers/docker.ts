/**
 * Gate for tests that need the real Docker engine. Locally, no engine means the tests are skipped;
 * in CI it means they fail, so a broken test machine can never pass as green.
 */
import DockerModem from 'docker-modem';
import { describe, it } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import type { ContainerSpec } from '../../shared/container-spec.js';
import { containerSpec } from './container-spec.js';

export const DOCKER_SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';
const PING_TIMEOUT_MS = 3_000;

const modem = new DockerModem({ socketPath: DOCKER_SOCKET });

/** One engine API call; a refusal rejects with docker-modem's error, which carries the `statusCode`. */
function call<T>(method: string, path: string, options?: DockerModem.DialOptions['options']): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    modem.dial({ method, path, options, statusCodes: { 200: true, 201: true, 204: true } }, (err, result) =>
      err ? reject(err) : resolve(result as T),
    );
  });
}

/** A GET /containers/json entry, as far as the tests read it. */
export interface ListedContainer {
  Id: string;
  State: string;
  Labels: Record<string, string>;
}

/** GET /containers/{id}/json, as far as the tests read it. */
export interface ContainerInspect {
  Name: string;
  State: { StartedAt: string };
  Config: { Env: string[]; ExposedPorts?: Record<string, object>; Labels: Record<string, string> };
  HostConfig: {
    NanoCpus: number;
    Memory: number;
    RestartPolicy?: { Name: string };
    Init: boolean;
    LogConfig: { Type: string; Config: Record<string, string> };
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
  };
}

/**
 * The engine calls the tests make behind the agent's back, straight on the API (not through the
 * DockerRuntime under test).
 */
export const docker = {
  ping: (): Promise<unknown> => call('GET', '/_ping'),
  /** Every container (any state) carrying all these `key=value` labels. */
  listContainers: (labels: string[]): Promise<ListedContainer[]> =>
    call('GET', '/containers/json?', { all: true, filters: { label: labels } }),
  inspectContainer: (id: string): Promise<ContainerInspect> => call('GET', `/containers/${id}/json`),
  createContainer: (name: string, body: object): Promise<{ Id: string }> =>
    call('POST', '/containers/create?', { _query: { name }, _body: body }),
  stopContainer: (id: string, timeoutS: number): Promise<unknown> => call('POST', `/containers/${id}/stop?`, { t: timeoutS }),
  removeContainer: (id: string): Promise<unknown> => call('DELETE', `/containers/${id}?`, { force: true, v: true }),
  inspectImage: (image: string): Promise<unknown> => call('GET', `/images/${image}/json`),
  /** Removes the image, or only this tag of it while other tags remain. */
  removeImage: (image: string, opts: { force?: boolean } = {}): Promise<unknown> =>
    call('DELETE', `/images/${image}?`, { force: opts.force ?? false }),
  tagImage: (image: string, repo: string, tag: string): Promise<unknown> => call('POST', `/images/${image}/tag?`, { repo, tag }),
};

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
  const containers = await docker.listContainers([`${LABELS.nodeId}=${nodeId}`]);
  await Promise.all(
    containers.map(async (c) => {
      try {
        await docker.removeContainer(c.Id);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    }),
  );
}

/** A container spec that sleeps: what the runtime tests run unless they say otherwise. */
export function sleeperSpec(image: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return containerSpec(image, { command: ['/bin/sleep', '300'], ...overrides });
}
