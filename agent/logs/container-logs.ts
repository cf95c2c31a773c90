/**
 * A replica's container output, read from the Docker engine through dockerode. The container is
 * found by the labels the runtime sets (its replica and this node), so a node only ever reads its
 * own replicas' logs. The engine's stream is handed back as it is, for the caller to read with
 * backpressure (see credited-chunks.ts); destroying it ends the engine's side.
 */
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { LABELS } from '../runtime/container-runtime.js';

export interface LogRequest {
  replicaId: string;
  tail: number;
  follow: boolean;
  timestamps: boolean;
  /** Epoch seconds. */
  since?: number;
}

/** Where the agent reads its containers' logs; a fake stands in for it in unit tests. */
export interface ContainerLogSource {
  /** The engine's raw log stream of the replica's container; rejects with a LogReadError when there is none. */
  open(request: LogRequest, signal: AbortSignal): Promise<Readable>;
}

/** A log stream that cannot be had, in words an operator acts on. */
export class LogReadError extends Error {}

/** How long the engine has to answer the listing and the logs request (the stream itself may last). */
const ENGINE_ANSWER_TIMEOUT_MS = 15_000;

export class DockerContainerLogs implements ContainerLogSource {
  private readonly docker: Docker;

  constructor(private readonly opts: { socketPath: string; nodeId: string }) {
    this.docker = new Docker({ socketPath: opts.socketPath });
  }

  async open(request: LogRequest, signal: AbortSignal): Promise<Readable> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(ENGINE_ANSWER_TIMEOUT_MS)]);
    let listed: Docker.ContainerInfo[];
    try {
      listed = await this.docker.listContainers({
        all: true,
        filters: { label: [`${LABELS.replicaId}=${request.replicaId}`, `${LABELS.nodeId}=${this.opts.nodeId}`] },
        abortSignal: deadline,
      });
    } catch (err) {
      throw new LogReadError(`the container engine did not list the replica's container: ${(err as Error).message}`);
    }
    // During a replacement a replica may briefly have two: the newest is the one that runs.
    const container = listed.sort((a, b) => b.Created - a.Created)[0];
    if (!container) throw new LogReadError(`no container of replica ${request.replicaId} on this node (not started yet, or removed)`);
    const options: Record<string, unknown> = {
      follow: request.follow,
      stdout: true,
      stderr: true,
      tail: String(request.tail),
      timestamps: request.timestamps,
    };
    if (request.since !== undefined) options.since = request.since;
    // The engine has a while to answer; once it does, the stream lasts as long as the hub wants it.
    const unanswered = new AbortController();
    const answerTimer = setTimeout(() => unanswered.abort(new Error(`no answer within ${ENGINE_ANSWER_TIMEOUT_MS} ms`)), ENGINE_ANSWER_TIMEOUT_MS);
    try {
      // The modem's dial, not container.logs(): that one buffers a whole tail in memory unless it follows.
      return await new Promise<Readable>((resolve, reject) => {
        this.docker.modem.dial(
          {
            path: `/containers/${container.Id}/logs?`,
            method: 'GET',
            options,
            isStream: true,
            abortSignal: AbortSignal.any([signal, unanswered.signal]),
            statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          },
          (err: unknown, data: unknown) => (err ? reject(err as Error) : resolve(data as Readable)),
        );
      });
    } catch (err) {
      throw new LogReadError(`the container engine refused the logs of ${container.Id.slice(0, 12)}: ${(err as Error).message}`);
    } finally {
      clearTimeout(answerTimer);
    }
  }
}
