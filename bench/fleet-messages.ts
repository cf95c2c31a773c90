/** The commands the fleet benchmark sends its agent processes over IPC, and their answers. */

/** The frame the agents send as heartbeat, byte for byte; the baseline clients send the same. */
export const HEARTBEAT_FRAME = '{"type":"heartbeat"}';

/** The image every simulated engine has already: placement is measured, not a simulated pull. */
export const BENCH_IMAGE = '127.0.0.1:5000/busybox:1';

export type WorkerCommand =
  | { cmd: 'join'; hubUrl: string; joinToken: string; firstIndex: number; count: number; concurrency: number }
  | { cmd: 'start' }
  | { cmd: 'status' }
  /** Replicas of a service the live agents have reported running to the hub (their last report). */
  | { cmd: 'reported'; service: string }
  | { cmd: 'burst'; framesPerConnection: number }
  /** Stops every agent whose fleet-wide index is a multiple of `every`. */
  | { cmd: 'cut'; every: number; service: string }
  | { cmd: 'raw-connect'; url: string; count: number; heartbeatMs: number }
  | { cmd: 'raw-burst'; framesPerConnection: number }
  | { cmd: 'raw-close' };

export interface JoinResult {
  joined: number;
  failed: number;
  firstError: string | null;
}

export interface AgentStatus {
  /** Agents not cut. */
  live: number;
  /** Of those, how many have a welcome from the hub (their hello was accepted). */
  ready: number;
  /** Welcomes received so far over all agents (connections that reached ready). */
  connects: number;
  /** Warnings and errors the agents logged, and how often each distinct message was logged. */
  warnings: number;
  errors: number;
  messages: Record<string, number>;
}

export interface BurstResult {
  connections: number;
  frames: number;
  /** Wall clock (Date.now) when the first frame was handed to a socket. */
  startedAtMs: number;
  /** When the last frame was handed to a socket. */
  sentAtMs: number;
  /** When the last pong came back: the server had read every frame sent before its ping. */
  doneAtMs: number;
  missingPongs: number;
}

export interface CutResult {
  nodeIds: string[];
  /** Replicas of the service the cut agents had last reported running. */
  replicas: number;
}

export interface RawConnectResult {
  opened: number;
  failed: number;
  firstError: string | null;
}

export type WorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
export type WorkerRequest = WorkerCommand & { id: number };
