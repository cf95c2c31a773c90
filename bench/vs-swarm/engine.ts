/**
 * The engine as the benchmark sees it, straight through the Engine API (docker-modem, as the agent
 * uses): what runs is judged here for every side alike, and the raw-engine column creates its
 * containers here.
 */
import DockerModem from 'docker-modem';

export const DOCKER_SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';
/** One engine call, at most this long: a hung engine fails the run instead of stalling it. */
const CALL_TIMEOUT_MS = 30_000;

const modem = new DockerModem({ socketPath: DOCKER_SOCKET, timeout: CALL_TIMEOUT_MS });

function call<T>(method: string, path: string, options?: DockerModem.DialOptions['options']): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    modem.dial({ method, path, options, statusCodes: { 200: true, 201: true, 204: true, 304: true } }, (err, result) =>
      err ? reject(err) : resolve(result as T),
    );
  });
}

/** A GET /containers/json entry, as far as the benchmark reads it. */
export interface ListedContainer {
  Id: string;
  ImageID: string;
  Command: string;
  State: string;
  Created: number;
}

/** Every container (any state) carrying all these `key=value` labels. */
export const listContainers = (labels: string[]): Promise<ListedContainer[]> =>
  call('GET', '/containers/json?', { all: true, filters: { label: labels } });

export const imageId = async (image: string): Promise<string> => (await call<{ Id: string }>('GET', `/images/${image}/json`)).Id;

export const ping = (): Promise<unknown> => call('GET', '/_ping');

export async function swarmState(): Promise<string> {
  const info = await call<{ Swarm?: { LocalNodeState?: string } }>('GET', '/info');
  return info.Swarm?.LocalNodeState ?? 'inactive';
}

/** Removes forcibly (stops first); a container already gone is fine. */
export async function removeContainer(id: string): Promise<void> {
  try {
    await call('DELETE', `/containers/${id}?`, { force: true, v: true });
  } catch (err) {
    const code = (err as { statusCode?: number }).statusCode;
    // 404: gone already; 409: removal already in progress.
    if (code !== 404 && code !== 409) throw err;
  }
}

/** Creates and starts one container the way the agent does (same image, command, init, labels). */
export async function runContainer(name: string, image: string, command: string[], labels: Record<string, string>): Promise<void> {
  const created = await call<{ Id: string }>('POST', '/containers/create?', {
    _query: { name },
    _body: { Image: image, Cmd: command, Labels: labels, HostConfig: { Init: true, RestartPolicy: { Name: 'unless-stopped' } } },
  });
  await call('POST', `/containers/${created.Id}/start`);
}

/** Runs `work` on each item, at most `parallel` at once; the first failure rejects (after the rest settle). */
export async function inParallel<T>(items: readonly T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, lane));
  if (failure !== null) throw failure;
}

/** Force-removes every container with these labels, `parallel` at once; returns how many. */
export async function removeLabelled(labels: string[], parallel = 8): Promise<number> {
  const found = await listContainers(labels);
  await inParallel(found, parallel, (c) => removeContainer(c.Id));
  return found.length;
}
