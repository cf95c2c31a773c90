import { NODE_FACT_MAX_LENGTH, PROTOCOL_LIMITS, PROTOCOL_VERSION, type HelloFrame, type NodeFacts, type TargetFrame } from '../shared/protocol.js';
import { Backoff } from '../shared/backoff.js';
import { containerInputsFor } from './container-inputs.js';
import { HubLink } from './hub-link.js';
import type { ContainerLogSource } from './logs/container-logs.js';
import { AgentLogStreams } from './logs/log-streams.js';
import { IdentityFile, type NodeIdentity } from './node-identity.js';
import { ReconcileLoop } from './reconciler/reconcile-loop.js';
import type { RestartCountStore } from './reconciler/restart-tally.js';
import { readDiskUsage } from './device-facts.js';
import { EngineAvailability } from './engine-availability.js';
import { HelloRenewal } from './hello-renewal.js';
import { NodeConditionsTracker } from './node-conditions.js';
import { LABELS, type ContainerRuntime, type EngineProbe } from './runtime/container-runtime.js';
import type { TargetCache } from './target-cache.js';
import type { PinnedCa } from './tls/pinned-ca.js';
import { ValueDelivery } from './values/value-delivery.js';
import type { ValueFileStore } from './values/value-file-store.js';
import type { Logger } from '../shared/logger.js';

/** Retries of a target cache save that failed: from a second, at most a minute apart. */
const CACHE_RETRY_BASE_MS = 1_000;
const CACHE_RETRY_CAP_MS = 60_000;
/** How often the data dir's and the engine storage's free space is read (statfs: cheap). */
export const DISK_REFRESH_INTERVAL_MS = 60_000;

export interface AgentOptions {
  identity: NodeIdentity;
  /** The hub's CA pinned at join (an https:// hub); absent for a plain-HTTP one. */
  pinnedCa?: PinnedCa | null;
  name: string;
  labels: Record<string, string>;
  advertiseAddress: string | null;
  publishAddress: string | null;
  runtime: ContainerRuntime & EngineProbe;
  /** Where containers' logs are read for the hub (protocol 8); absent (simulated fleets): the agent says it reads none. */
  logs?: ContainerLogSource;
  /** The agent's data dir, whose filesystem the conditions describe; none (simulated fleets) reports no disks. */
  dataDir?: string;
  /**
   * Where the identity file is kept (the data dir), so that a rotated credential is stored there;
   * none (simulated fleets) cannot take a new credential, and a rotation times out on the hub.
   */
  identityDir?: string;
  /** Null keeps no target on disk (simulated fleets); a real agent always has one. */
  targetCache: TargetCache | null;
  /**
   * Where the files of configs and secrets go (the secrets' one a tmpfs); none keeps no files, and
   * a replica that mounts one fails (its env values still work).
   */
  valueFiles?: { secrets: ValueFileStore; configs: ValueFileStore };
  /** See ValueDeliveryOptions.sweepIntervalMs. */
  valueSweepIntervalMs?: number;
  /** Where restart counts survive an agent restart (the data dir); none keeps them in memory. */
  restartCounts?: RestartCountStore;
  facts: NodeFacts;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  resyncIntervalMs?: number;
  /** See ReconcileLoopOptions.imageReleaseGraceMs. */
  imageReleaseGraceMs?: number;
  reconnectBaseMs?: number;
  reconnectCapMs?: number;
  retryBaseMs?: number;
  /** Pings while the engine is away (default ENGINE_RETRY_INTERVAL_MS). */
  engineRetryIntervalMs?: number;
  diskRefreshIntervalMs?: number;
  /** Least time between two hellos said again for changed facts (default HELLO_RENEW_MIN_INTERVAL_MS). */
  helloRenewMinIntervalMs?: number;
}

/** The runtime fact of an agent that has not reached its engine yet; replaced once it answers. */
export const RUNTIME_UNKNOWN = 'unknown (engine unreachable)';

/**
 * One agent: the hub link feeds targets to the reconcile loop (and to the on-disk cache); the loop
 * reports back acks and replica status. Works the same whether the hub is there or not.
 */
export class Agent {
  readonly loop: ReconcileLoop;
  readonly link: HubLink;
  /** The configs and secrets of the target, and their files. */
  readonly values: ValueDelivery;
  /** Containers' logs streamed to the hub, as it asks. */
  readonly logStreams: AgentLogStreams;
  private cacheWrite: Promise<void> = Promise.resolve();
  /** The newest target not yet on disk: a save that failed (a full disk) is retried until one works. */
  private unsavedTarget: TargetFrame | null = null;
  private cacheRetryTimer: NodeJS.Timeout | null = null;
  private readonly cacheBackoff = new Backoff({ baseMs: CACHE_RETRY_BASE_MS, capMs: CACHE_RETRY_CAP_MS });
  private stopping = false;
  /** The identity file, for rotated credentials; null without identityDir. */
  private readonly identityFile: IdentityFile | null;
  readonly conditions: NodeConditionsTracker;
  readonly engine: EngineAvailability;
  private facts: NodeFacts;
  /** The facts the last hello carried. */
  private factsTold: NodeFacts | null = null;
  private readonly helloRenewal: HelloRenewal;
  /** Where the engine keeps its data, as it said last; null until it says. */
  private engineStorageDir: string | null = null;
  private diskTimer: NodeJS.Timeout | null = null;
  private diskRead: Promise<void> | null = null;
  /** The engine's answers about itself after its last return (see learnEngine). */
  private learning: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AgentOptions) {
    this.facts = opts.facts;
    this.conditions = new NodeConditionsTracker({ send: (conditions) => this.link.send({ type: 'conditions', conditions }) });
    this.engine = new EngineAvailability({
      probe: opts.runtime,
      logger: opts.logger,
      retryIntervalMs: opts.engineRetryIntervalMs,
      onChange: (available, error) => this.engineChanged(available, error),
    });
    this.values = new ValueDelivery({
      nodeId: opts.identity.nodeId,
      runtime: opts.runtime,
      stores: opts.valueFiles ?? null,
      logger: opts.logger,
      sweepIntervalMs: opts.valueSweepIntervalMs,
    });
    this.loop = new ReconcileLoop({
      nodeId: opts.identity.nodeId,
      runtime: opts.runtime,
      publishAddress: opts.publishAddress,
      logger: opts.logger,
      resyncIntervalMs: opts.resyncIntervalMs,
      imageReleaseGraceMs: opts.imageReleaseGraceMs,
      retryBaseMs: opts.retryBaseMs,
      restartCounts: opts.restartCounts,
      containerInputs: containerInputsFor(opts.identity.nodeId, this.values),
      // The loop's outbox keeps each call within the protocol's limit for one status frame.
      onReport: (replicas) => void this.link.send({ type: 'status', replicas }),
      // `pending`: replicas of the generation still waiting for their image (a partial ack).
      onApplied: (generation: number, pending = 0) => void this.link.send({ type: 'ack', generation, pending }),
    });
    this.logStreams = new AgentLogStreams({ source: opts.logs ?? null, send: (frame) => this.link.send(frame), logger: opts.logger });
    this.identityFile = opts.identityDir === undefined ? null : new IdentityFile(opts.identityDir, opts.identity);
    const identityFile = this.identityFile;
    this.link = new HubLink({
      hubUrl: opts.identity.hubUrl,
      pinnedCa: opts.pinnedCa ?? null,
      credential: opts.identity.credential,
      fallbackCredential: opts.identity.previousCredential ?? null,
      ...(identityFile
        ? {
            onCredential: (frame, current) => identityFile.rotated(frame.credential, current),
            onWelcomed: (credential) => {
              identityFile.confirmed(credential).catch((err: unknown) => opts.logger.warn({ err: (err as Error).message }, 'could not drop the unused node credential from the identity file'));
            },
          }
        : {}),
      // What a fleet operator expects of a removed device: nothing it runs stops by surprise (a
      // removal by mistake must not take a shop's till down), and nothing new comes; the operator
      // decides on site. The containers keep running from the last target, and the log says so.
      onRemoved: (reason) => {
        this.logRemoved(reason);
        identityFile?.removed(reason).catch((err: unknown) => opts.logger.warn({ err: (err as Error).message }, 'could not note the removal in the identity file'));
      },
      logger: opts.logger,
      reconnectBaseMs: opts.reconnectBaseMs,
      reconnectCapMs: opts.reconnectCapMs,
      hello: () => this.hello(),
      // The hello names the applied generation but not what of it still waits for an image. Sent
      // right behind it, so the hub has the whole picture before any later ack or report.
      onHelloSent: () => {
        const pending = this.loop.appliedPending;
        if (pending > 0) this.link.send({ type: 'ack', generation: this.loop.appliedGeneration, pending });
      },
      onTarget: (target) => this.onTarget(target),
      onLogs: (frame) => this.logStreams.handle(frame),
      onConnectionChange: (connected) => {
        if (connected) this.conditions.connected();
        // The hub forgets a connection's log streams with it; so does the agent.
        else this.logStreams.closeAll('the link to the hub was lost');
      },
    });
    this.helloRenewal = new HelloRenewal({
      isStale: () => this.factsAreStale(),
      renew: () => {
        // The hub hears the change (an engine back, say) before the connection closes.
        this.conditions.sendPending();
        return this.link.renewHello();
      },
      minIntervalMs: opts.helloRenewMinIntervalMs,
    });
  }

  /**
   * One line, once per agent run. What a fleet operator expects of a removed device: nothing it
   * runs stops by surprise (a removal by mistake must not take a shop's till down with it; the hub
   * has placed its replicas elsewhere already), and nothing new comes; the operator decides on
   * site. Its containers keep running from the last target, restarted by their policies.
   */
  private logRemoved(reason: string): void {
    const nodeId = this.opts.identity.nodeId;
    this.opts.logger.error(
      { nodeId, reason },
      `this node was removed from the hub by its operator: it no longer connects, and its containers keep running from the last target until an operator acts: stop the agent and remove them (docker rm -f $(docker ps -aq --filter label=${LABELS.nodeId}=${nodeId})), or remove node.json from the data dir and join again with a new join token`,
    );
  }

  private factsAreStale(): boolean {
    return this.link.helloOnWire && this.factsTold !== null && !sameFacts(this.factsTold, this.facts);
  }

  get nodeId(): string {
    return this.opts.identity.nodeId;
  }

  async start(): Promise<void> {
    await this.values.prepare();
    // The cached target first: after a reboot with no hub in sight the device runs its last
    // assignment at once instead of waiting for a hub that may be days away.
    const cached = await this.opts.targetCache?.load();
    if (cached) {
      this.opts.logger.info(
        { generation: cached.generation, replicas: cached.replicas.length },
        'running the cached target until the hub speaks; nothing running is removed or replaced until then',
      );
      // Its files before any pass: a container the engine restarts at boot finds them again.
      await this.values.setTarget(cached, { provisional: true, missingWhy: this.cachedSecretsNote() });
      // The cache may be older than what runs (a save that failed): it only fills gaps.
      this.loop.setTarget(cached.generation, cached.replicas, { provisional: true });
    }
    // Before the first hello, so that it says whether the engine answers. An engine away is no
    // reason to stop: the agent connects, says so, and goes on checking.
    await this.engine.start();
    await this.learning;
    await this.readDisks();
    if (this.opts.dataDir !== undefined) {
      this.diskTimer = setInterval(() => void this.readDisks(), this.opts.diskRefreshIntervalMs ?? DISK_REFRESH_INTERVAL_MS);
      this.diskTimer.unref();
    }
    // The first listing gives the hello the replicas running now; not the whole first pass, whose
    // starts may take longer than the hub waits before it moves a silent node's replicas. With the
    // engine away there is nothing to list, and the listing may wait out a deadline (a hung
    // engine): the hub hears of the outage first.
    const firstPass = this.loop.start();
    if (this.engine.isAvailable) await Promise.race([this.loop.firstListing, firstPass]);
    // A node the hub removed never connects again (see NodeIdentity.removed); it runs what it ran.
    if (this.opts.identity.removed) this.logRemoved(this.opts.identity.removed.reason);
    else this.link.start();
    await firstPass;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.engine.stop();
    this.conditions.stop();
    this.helloRenewal.stop();
    this.logStreams.closeAll('the agent is stopping');
    if (this.diskTimer) clearInterval(this.diskTimer);
    if (this.cacheRetryTimer) clearTimeout(this.cacheRetryTimer);
    await this.link.stop();
    await this.loop.stop();
    await this.values.stop();
    await this.cacheWrite;
  }

  /** Why a secret the cached target names may be missing: said in the error of each replica that needs it. */
  private cachedSecretsNote(): string {
    return this.opts.targetCache?.offlineSecrets === false
      ? 'secrets are kept in memory only (--no-offline-secrets) and the agent started without the hub: it comes with the hub\'s next target'
      : 'the cached target did not hold it (a cached secret that could not be opened is logged at start): it comes with the hub\'s next target';
  }

  private hello(): HelloFrame {
    const replicas = this.loop.snapshot();
    this.factsTold = this.facts;
    return {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      name: this.opts.name,
      labels: this.opts.labels,
      advertiseAddress: this.opts.advertiseAddress,
      facts: this.facts,
      appliedGeneration: this.loop.appliedGeneration,
      // One frame carries at most the protocol cap; a device running more than that is outside
      // what the protocol supports, so the hub sees the first ones only.
      replicas: replicas.slice(0, PROTOCOL_LIMITS.maxReportedReplicas),
      conditions: this.conditions.forHello(),
    };
  }

  private engineChanged(available: boolean, error: string | null): void {
    this.conditions.setEngine(available, error);
    if (available) this.learning = this.learnEngine();
  }

  /**
   * What the engine says of itself, asked again at each return (it may have been upgraded or moved
   * its storage meanwhile): its storage dir for the disk conditions, and its version for the
   * runtime fact (the first hello, when the engine answers at start; else the next one).
   */
  private async learnEngine(): Promise<void> {
    try {
      this.engineStorageDir = await this.opts.runtime.storageDir();
      this.facts = { ...this.facts, runtime: (await this.opts.runtime.version()).slice(0, NODE_FACT_MAX_LENGTH.runtime) };
    } catch (err) {
      // Gone again: the availability check says so; the next return asks again.
      this.opts.logger.warn({ err: (err as Error).message }, 'could not ask the container engine about itself');
      return;
    }
    // Facts travel only in a hello: a hub told others hears the new ones in a new one.
    if (!this.stopping) this.helloRenewal.request();
    await this.diskRead; // one in flight may have started before the storage dir was known
    await this.readDisks();
  }

  /** One read of both disks at a time; a read asked for meanwhile is served by the one in flight. */
  private readDisks(): Promise<void> {
    const dataDir = this.opts.dataDir;
    if (dataDir === undefined) return Promise.resolve();
    this.diskRead ??= (async () => {
      const engineDir = this.engineStorageDir;
      const [dataDisk, engineDisk] = await Promise.all([readDiskUsage(dataDir), engineDir === null ? null : readDiskUsage(engineDir)]);
      if (!this.stopping) this.conditions.setDisks(dataDisk, engineDisk);
    })().finally(() => {
      this.diskRead = null;
    });
    return this.diskRead;
  }

  private onTarget(target: TargetFrame): void {
    // Values first: the pass the loop starts now creates containers from them.
    void this.values.setTarget(target);
    this.loop.setTarget(target.generation, target.replicas, target.purgeVolumes ? { purgeVolumes: target.purgeVolumes } : {});
    if (!this.opts.targetCache) return;
    this.unsavedTarget = target;
    this.saveTarget();
  }

  /**
   * Writes the newest target to the cache, one write at a time. A cache left stale would, after a
   * reboot without the hub, hold an older assignment than the containers running: a failed save
   * is retried with backoff until the newest target is on disk.
   */
  private saveTarget(): void {
    const cache = this.opts.targetCache;
    if (!cache) return;
    this.cacheWrite = this.cacheWrite.then(async () => {
      const target = this.unsavedTarget;
      if (!target || this.stopping) return;
      try {
        await cache.save(target);
        if (this.unsavedTarget === target) {
          this.unsavedTarget = null;
          this.conditions.setTargetCache(true, null);
        }
        if (this.cacheBackoff.attempts > 0) this.opts.logger.info({ generation: target.generation }, 'the target is cached on disk again');
        this.cacheBackoff.reset();
      } catch (err) {
        const retryInMs = Math.max(CACHE_RETRY_BASE_MS, this.cacheBackoff.nextDelayMs());
        // Once per failing stretch as an error; the retries after it as warnings.
        const log = this.cacheBackoff.attempts === 1 ? this.opts.logger.error : this.opts.logger.warn;
        log.call(this.opts.logger, { err, generation: target.generation, retryInMs }, 'could not cache the target on disk; retrying');
        this.conditions.setTargetCache(false, `could not save target generation ${target.generation}: ${(err as Error).message}`);
        if (!this.cacheRetryTimer && !this.stopping) {
          this.cacheRetryTimer = setTimeout(() => {
            this.cacheRetryTimer = null;
            this.saveTarget();
          }, retryInMs);
          this.cacheRetryTimer.unref();
        }
      }
    });
  }

}

function sameFacts(a: NodeFacts, b: NodeFacts): boolean {
  return (Object.keys(a) as Array<keyof NodeFacts>).every((k) => a[k] === b[k]);
}
