import { PROTOCOL_LIMITS, PROTOCOL_VERSION, type HelloFrame, type NodeFacts, type ReplicaReport, type TargetFrame } from '../shared/protocol.js';
import { HubLink, type LinkLogger } from './hub-link.js';
import type { NodeIdentity } from './node-identity.js';
import { ReconcileLoop } from './reconciler/reconcile-loop.js';
import type { RestartCountStore } from './reconciler/restart-tally.js';
import type { ContainerRuntime } from './runtime/container-runtime.js';
import type { TargetCache } from './target-cache.js';

export interface AgentOptions {
  identity: NodeIdentity;
  name: string;
  labels: Record<string, string>;
  advertiseAddress: string | null;
  publishAddress: string | null;
  runtime: ContainerRuntime;
  /** Null keeps no target on disk (simulated fleets); a real agent always has one. */
  targetCache: TargetCache | null;
  /** Where restart counts survive an agent restart (the data dir); none keeps them in memory. */
  restartCounts?: RestartCountStore;
  facts: NodeFacts;
  logger: LinkLogger;
  resyncIntervalMs?: number;
  reconnectBaseMs?: number;
  reconnectCapMs?: number;
  retryBaseMs?: number;
}

/**
 * One agent: the hub link feeds targets to the reconcile loop (and to the on-disk cache); the loop
 * reports back acks and replica status. Works the same whether the hub is there or not.
 */
export class Agent {
  readonly loop: ReconcileLoop;
  readonly link: HubLink;
  private cacheWrite: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AgentOptions) {
    this.loop = new ReconcileLoop({
      nodeId: opts.identity.nodeId,
      runtime: opts.runtime,
      publishAddress: opts.publishAddress,
      logger: opts.logger,
      resyncIntervalMs: opts.resyncIntervalMs,
      retryBaseMs: opts.retryBaseMs,
      restartCounts: opts.restartCounts,
      onReport: (changed) => this.sendStatus(changed),
      onApplied: (generation) => void this.link.send({ type: 'ack', generation }),
    });
    this.link = new HubLink({
      hubUrl: opts.identity.hubUrl,
      credential: opts.identity.credential,
      logger: opts.logger,
      reconnectBaseMs: opts.reconnectBaseMs,
      reconnectCapMs: opts.reconnectCapMs,
      hello: () => this.hello(),
      onTarget: (target) => this.onTarget(target),
    });
  }

  get nodeId(): string {
    return this.opts.identity.nodeId;
  }

  async start(): Promise<void> {
    // The cached target first: after a reboot with no hub in sight the device runs its last
    // assignment at once instead of waiting for a hub that may be days away.
    const cached = await this.opts.targetCache?.load();
    if (cached) {
      this.opts.logger.info({ generation: cached.generation, replicas: cached.replicas.length }, 'running the cached target until the hub speaks');
      this.loop.setTarget(cached.generation, cached.replicas);
    }
    await this.loop.start();
    this.link.start();
  }

  async stop(): Promise<void> {
    await this.link.stop();
    await this.loop.stop();
    await this.cacheWrite;
  }

  private hello(): HelloFrame {
    const replicas = this.loop.snapshot();
    return {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      name: this.opts.name,
      labels: this.opts.labels,
      advertiseAddress: this.opts.advertiseAddress,
      facts: this.opts.facts,
      appliedGeneration: this.loop.appliedGeneration,
      // One frame carries at most the protocol cap; a device running more than that is outside
      // what the protocol supports, so the hub sees the first ones only.
      replicas: replicas.slice(0, PROTOCOL_LIMITS.maxReportedReplicas),
    };
  }

  private onTarget(target: TargetFrame): void {
    this.loop.setTarget(target.generation, target.replicas);
    const cache = this.opts.targetCache;
    if (cache) {
      this.cacheWrite = this.cacheWrite
        .then(() => cache.save(target))
        .catch((err: unknown) => this.opts.logger.error({ err }, 'could not cache the target on disk'));
    }
  }

  private sendStatus(changed: ReplicaReport[]): void {
    for (let i = 0; i < changed.length; i += PROTOCOL_LIMITS.maxReportedReplicas) {
      this.link.send({ type: 'status', replicas: changed.slice(i, i + PROTOCOL_LIMITS.maxReportedReplicas) });
    }
  }
}
