/**
 * Runs the http and tcp health checks the agent makes itself: one timer per checked container
 * (a try every intervalMs, the next armed only when one ends, so a container never has two tries
 * at once), at most maxInFlight tries in flight for the whole agent (the rest wait their turn),
 * and at most maxChecked containers checked. Exec checks are the engine's (its HEALTHCHECK), as
 * are all of a simulated engine's: a container whose listing carries the engine's health is not
 * probed here.
 *
 * Health is soft state: what is tracked follows each listing of the engine (track), so after an
 * agent restart every checked container starts again at `starting`, and a container that stops,
 * restarts or goes drops its timer.
 */
import { canonicalJson, type HealthCheck } from '../../shared/container-spec.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { ReplicaHealth } from '../../shared/protocol.js';
import type { ObservedContainer } from '../runtime/container-runtime.js';
import { afterTry, initialHealthState, sameHealth, type HealthState } from './health-state.js';
import { probeHttp } from './http-probe.js';
import type { ProbeResult } from './probe-result.js';
import { probeTcp } from './tcp-probe.js';

/** Tries in flight at once for the whole agent: a node of hundreds of replicas opens no more sockets than this. */
export const HEALTH_PROBES_IN_FLIGHT_MAX = 16;
/** Containers checked at once; beyond it a container stays `starting` (and a warning says why). */
export const HEALTH_CHECKED_CONTAINERS_MAX = 2048;

/** One try of a check against a container's address; never rejects. */
export type Probe = (check: HealthCheck, address: string) => Promise<ProbeResult>;

export interface HealthMonitorOptions {
  /** A checked container's health changed (it is reported with it). */
  onChange: (containerId: string) => void;
  logger?: Pick<Logger, 'warn'>;
  clock?: Clock;
  maxInFlight?: number;
  maxChecked?: number;
  /** Default: the http and tcp probes. */
  probe?: Probe;
}

interface Checked {
  containerId: string;
  check: HealthCheck;
  /** What makes it the same check of the same run of the container: a change starts it afresh. */
  key: string;
  address: string;
  startedAtMs: number;
  state: HealthState;
  timer: NodeJS.Timeout | null;
  stopped: boolean;
}

export const defaultProbe: Probe = (check, address) => {
  const port = check.port ?? 0;
  if (check.type === 'http') {
    return probeHttp({
      host: address,
      port,
      path: check.path ?? '/',
      statusMin: check.statusMin ?? 200,
      statusMax: check.statusMax ?? 399,
      timeoutMs: check.timeoutMs,
    });
  }
  return probeTcp({ host: address, port, timeoutMs: check.timeoutMs });
};

export class HealthMonitor {
  private readonly checked = new Map<string, Checked>();
  /** Checks whose turn came while maxInFlight tries were running, oldest first. */
  private readonly waiting: Checked[] = [];
  private inFlight = 0;
  private closed = false;
  private warnedFull = false;
  private readonly clock: Clock;
  private readonly maxInFlight: number;
  private readonly maxChecked: number;
  private readonly probe: Probe;

  constructor(private readonly opts: HealthMonitorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.maxInFlight = opts.maxInFlight ?? HEALTH_PROBES_IN_FLIGHT_MAX;
    this.maxChecked = opts.maxChecked ?? HEALTH_CHECKED_CONTAINERS_MAX;
    this.probe = opts.probe ?? defaultProbe;
    if (this.maxInFlight < 1) throw new Error('invariant: maxInFlight must be at least 1');
  }

  /** The health its tries found so far; undefined for a container not checked here. */
  healthOf(containerId: string): ReplicaHealth | undefined {
    return this.checked.get(containerId)?.state.health;
  }

  /**
   * The agent started the container again (its restart policy restarted it, say for failing this
   * check): a new run, checked afresh from `starting` once a listing shows it running. The engine's
   * restart count, in the key, cannot tell: a start through the API sets it back to 0.
   */
  forget(containerId: string): void {
    const entry = this.checked.get(containerId);
    if (entry) this.untrack(entry);
  }

  /** How many containers are checked now. */
  get size(): number {
    return this.checked.size;
  }

  /**
   * Checks exactly the containers of this listing that need the agent's probes: running, with an
   * http or tcp check the engine does not run, and an address. Others stop being checked.
   */
  track(containers: readonly ObservedContainer[]): void {
    if (this.closed) return;
    const wanted = new Map<string, { c: ObservedContainer; key: string }>();
    for (const c of containers) {
      const check = c.healthCheck;
      if (!check || check.type === 'exec' || c.state !== 'running' || c.engineHealth || !c.address) continue;
      // The restart count is in the key: a container the engine restarted is a new run, starting again.
      wanted.set(c.id, { c, key: `${canonicalJson(check)}|${c.address}|${c.restartCount ?? ''}` });
    }
    for (const [id, entry] of this.checked) {
      if (wanted.get(id)?.key !== entry.key) this.untrack(entry);
    }
    for (const [id, { c, key }] of wanted) {
      if (this.checked.has(id)) continue;
      if (this.checked.size >= this.maxChecked) {
        if (!this.warnedFull) this.opts.logger?.warn({ maxChecked: this.maxChecked }, 'too many containers to health-check; the rest stay starting');
        this.warnedFull = true;
        continue;
      }
      const entry: Checked = {
        containerId: id,
        check: c.healthCheck!,
        key,
        address: c.address!,
        startedAtMs: this.clock.nowMs(),
        state: initialHealthState(),
        timer: null,
        stopped: false,
      };
      this.checked.set(id, entry);
      // Like Docker: the first try comes one interval after the start.
      this.arm(entry);
    }
  }

  /** Stops every timer; tries in flight finish unheard. */
  close(): void {
    this.closed = true;
    for (const entry of this.checked.values()) this.untrack(entry);
    this.waiting.length = 0;
  }

  private untrack(entry: Checked): void {
    entry.stopped = true;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (this.checked.get(entry.containerId) === entry) this.checked.delete(entry.containerId);
    if (this.checked.size < this.maxChecked) this.warnedFull = false;
  }

  private arm(entry: Checked): void {
    entry.timer = setTimeout(() => {
      entry.timer = null;
      this.turn(entry);
    }, entry.check.intervalMs);
    entry.timer.unref();
  }

  private turn(entry: Checked): void {
    if (entry.stopped) return;
    if (this.inFlight >= this.maxInFlight) {
      this.waiting.push(entry);
      return;
    }
    this.inFlight++;
    void this.probe(entry.check, entry.address)
      .catch((err: unknown): ProbeResult => ({ ok: false, output: err instanceof Error ? err.message : String(err) }))
      .then((result) => {
        this.inFlight--;
        if (!entry.stopped) {
          const before = entry.state.health;
          entry.state = afterTry(entry.state, result, entry.check, this.clock.nowMs() - entry.startedAtMs);
          if (!sameHealth(before, entry.state.health)) this.notify(entry.containerId);
          this.arm(entry);
        }
        const next = this.nextWaiting();
        if (next) this.turn(next);
      });
  }

  private nextWaiting(): Checked | undefined {
    let next = this.waiting.shift();
    while (next?.stopped) next = this.waiting.shift();
    return next;
  }

  private notify(containerId: string): void {
    try {
      this.opts.onChange(containerId);
    } catch (err) {
      this.opts.logger?.warn({ containerId, err: err instanceof Error ? err.message : String(err) }, 'health change handler threw');
    }
  }
}
