/**
 * A new container: the engine's create body built from a request (pure), and the create call.
 * Every container carries the LABELS the agent rebuilds its picture from, its logs capped, and the
 * restart policy enginePolicyOf chooses.
 */
import type Dockerode from 'dockerode';
import { enginePolicyOf, LABELS, type CreateContainerRequest } from '../container-runtime.js';
import { dockerHealthConfigOf, type DockerHealthConfig } from './engine-health-checks.js';
import { engineMountOf, type DockerMount } from './mounts.js';
import { healthCheckLabel } from '../health-check-label.js';
import type { EngineClient } from './engine-client.js';
import { DockerEngineError, engineError, engineMessage, statusCodeOf } from './engine-errors.js';

/**
 * Every container's logs capped at 3 files of 10 MB, compressed when rotated (the engine's `local`
 * driver, which `docker logs` reads as it does json-file): a device's flash wears out under
 * logs that grow without end, and the engine's default (json-file) never rotates.
 */
export const CONTAINER_LOG_CONFIG = { Type: 'local', Config: { 'max-size': '10m', 'max-file': '3' } } as const satisfies {
  Type: string;
  Config: Record<string, string>;
};

/** The body of POST /containers/create, as far as the runtime sets it. */
export interface ContainerCreateBody {
  Image: string;
  Cmd?: string[];
  Env: string[];
  Labels: Record<string, string>;
  ExposedPorts: Record<string, object>;
  Healthcheck?: DockerHealthConfig;
  HostConfig: {
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    RestartPolicy: { Name: string };
    Init: boolean;
    LogConfig: { Type: string; Config: Record<string, string> };
    NanoCpus?: number;
    Memory?: number;
    Mounts?: DockerMount[];
  };
}

export function containerCreateBody(req: CreateContainerRequest): ContainerCreateBody {
  const { spec } = req;
  const exposedPorts: Record<string, object> = {};
  const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const port of spec.ports) {
    const key = `${port.containerPort}/${port.protocol}`;
    exposedPorts[key] = {};
    if (port.hostPort === null) continue; // exposed only: reachable from other containers, not from the host
    (portBindings[key] ??= []).push({ HostIp: req.publishAddress ?? '', HostPort: String(port.hostPort) });
  }
  const hostConfig: ContainerCreateBody['HostConfig'] = {
    PortBindings: portBindings,
    // See enginePolicyOf: the agent's own policy, else the engine's unless-stopped.
    RestartPolicy: { Name: enginePolicyOf(spec) },
    // A tiny init as PID 1 forwards SIGTERM, so `sh`/`sleep` commands stop without the kill timeout.
    Init: true,
    LogConfig: CONTAINER_LOG_CONFIG,
  };
  if (req.inputs && req.inputs.mounts.length > 0) hostConfig.Mounts = req.inputs.mounts.map(engineMountOf);
  if (spec.resources.cpus !== null) hostConfig.NanoCpus = Math.round(spec.resources.cpus * 1e9);
  if (spec.resources.memoryMB !== null) hostConfig.Memory = spec.resources.memoryMB * 1024 * 1024;

  const body: ContainerCreateBody = {
    Image: spec.image,
    Env: Object.entries(req.inputs?.env ?? spec.env).map(([key, value]) => `${key}=${value}`),
    // Ours last: a spec label must never fake which node, service or replica a container is.
    Labels: {
      ...spec.labels,
      [LABELS.managed]: 'true',
      [LABELS.nodeId]: req.nodeId,
      [LABELS.service]: req.service,
      [LABELS.replicaId]: req.replicaId,
      [LABELS.specHash]: req.specHash,
      ...(spec.healthcheck ? { [LABELS.healthCheck]: healthCheckLabel(spec.healthcheck) } : {}),
      [LABELS.image]: spec.image,
      ...(req.previousImage ? { [LABELS.previousImage]: req.previousImage } : {}),
      ...(req.pulledImages?.length ? { [LABELS.pulledImages]: req.pulledImages.join(',') } : {}),
    },
    ExposedPorts: exposedPorts,
    HostConfig: hostConfig,
  };
  if (spec.command !== null) body.Cmd = spec.command;
  const engineCheck = spec.healthcheck ? dockerHealthConfigOf(spec.healthcheck) : null;
  if (engineCheck) body.Healthcheck = engineCheck;
  return body;
}

/** Creates (not starts) the container; returns its id. A name already taken is a 409 that says so. */
export async function createContainer(engine: EngineClient, req: CreateContainerRequest): Promise<string> {
  const what = `create container ${req.name}`;
  // dockerode sends its options as the query string too: docker-modem's _query and _body keep the
  // name alone in the URL and the rest (env values included) in the body.
  const options = { _query: { name: req.name }, _body: containerCreateBody(req) } as unknown as Dockerode.ContainerCreateOptions;
  try {
    const created = await engine.call(what, engine.deadlines.createMs, (abortSignal) => engine.docker.createContainer({ ...options, abortSignal }));
    return created.id;
  } catch (err) {
    if (statusCodeOf(err) === 409) {
      throw new DockerEngineError(`${what}: a container with that name already exists (${engineMessage(err)})`, 409, { cause: err });
    }
    throw engineError(what, err);
  }
}
