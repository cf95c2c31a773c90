/**
 * Tells the hub what each replica is, from listings of the engine: at the end of every pass, and
 * while a pass applies steps. The hub hears of each replica as its steps finish, not only when the
 * pass ends: a pass over hundreds of slow starts takes minutes. Reports still come from a listing
 * of the engine (one per report window while steps run, see reportProgress), never from what a
 * step believes it did; the listing at the end of the pass remains the one that covers every
 * replica. What a report says is decided by replica-report.ts; this holds the last one sent per
 * replica and the timing.
 */
import { PROTOCOL_LIMITS, type AssignedReplica, type CrashLoop, type PullProgress, type ReplicaHealth, type ReplicaReport } from '../../shared/protocol.js';
import type { Logger } from '../../shared/logger.js';
import type { ContainerRuntime, ObservedContainer } from '../runtime/container-runtime.js';
import { sameHealth } from '../health/health-state.js';
import { changedReports, reportFor, runsItsSpec, samePull, standingsOf, type Standing } from './replica-report.js';
import { ReportOutbox } from './report-outbox.js';
import type { RestartBackoff } from './restart-backoff.js';
import type { RestartTally } from './restart-tally.js';
import { messageOf } from './step-executors.js';

export interface ReplicaReporterOptions {
  nodeId: string;
  runtime: ContainerRuntime;
  logger: Pick<Logger, 'warn'>;
  /** The replicas assigned now (the target's), read at each report. */
  assigned: () => readonly AssignedReplica[];
  backoff: RestartBackoff;
  restarts: RestartTally;
  /** Least time between two sends, and between two listings for reports during a pass. */
  windowMs: number;
  /** Reports one send carries at most; never more than the protocol's limit for a status frame. */
  maxPerFrame: number;
  send: (reports: ReplicaReport[]) => void;
  /** What the agent's own health probes found of a container (health-monitor.ts); none by default. */
  probedHealth?: (containerId: string) => ReplicaHealth | undefined;
  /** What a replica's restart policy says of its crash loop (restart-policies.ts); none by default. */
  crashLoop?: (replicaId: string) => CrashLoop | undefined;
  /** Why a replica's restart policy leaves its container stopped; none by default. */
  downNote?: (replicaId: string) => string | undefined;
  /** How far the pull of an image in flight got (image-pulls.ts); none by default. */
  pullProgress?: (image: string) => PullProgress | undefined;
}

export class ReplicaReporter {
  /** Last report per replica (sent, or waiting in the outbox): what reports diff against and snapshot() returns. */
  private reported = new Map<string, ReplicaReport>();
  private readonly outbox: ReportOutbox;
  /** While a pass applies steps: replicas whose steps in it have all finished, not yet reported. */
  private settled = new Set<string>();
  private applying = false;
  private progressTimer: NodeJS.Timeout | null = null;
  private progressReport: Promise<void> | null = null;

  constructor(private readonly opts: ReplicaReporterOptions) {
    this.outbox = new ReportOutbox({
      windowMs: opts.windowMs,
      maxPerFrame: Math.min(opts.maxPerFrame, PROTOCOL_LIMITS.maxReportedReplicas),
      send: opts.send,
    });
  }

  /** Every replica's current report: the assigned ones, plus unassigned containers still present. */
  snapshot(): ReplicaReport[] {
    return [...this.reported.values()];
  }

  /**
   * Reports every replica from this listing, sending those that changed and 'removed' once for
   * those gone. Returns the replicas reported (assigned, or present).
   */
  publish(current: readonly ObservedContainer[]): ReadonlySet<string> {
    const next = this.reportsOf(standingsOf(this.opts.assigned(), current));
    const changed = changedReports(this.reported, next);
    this.reported = next;
    if (changed.length > 0) this.outbox.push(changed);
    return new Set(next.keys());
  }

  /**
   * A probe changed what a container's health is: the replica it stands for is reported again,
   * with nothing else of its report changed (no listing: health is the agent's own finding).
   */
  healthChanged(containerId: string): void {
    const health = this.opts.probedHealth?.(containerId);
    if (!health) return;
    for (const [id, last] of this.reported) {
      if (last.containerId !== containerId || !last.health || last.state !== 'running') continue;
      if (sameHealth(last.health, health)) return;
      const next = { ...last, health };
      this.reported.set(id, next);
      this.outbox.push([next]);
      return;
    }
  }

  /**
   * The pull of `image` got further: the replicas assigned it are reported again with its
   * progress, nothing else of their reports changed (no listing: the pull is the agent's own).
   */
  pullProgressed(image: string): void {
    const progress = this.opts.pullProgress?.(image);
    if (!progress) return;
    const changed: ReplicaReport[] = [];
    for (const r of this.opts.assigned()) {
      if (r.container.image !== image) continue;
      const last = this.reported.get(r.replicaId);
      // Only a replica still waiting for it: one reported running its spec has its image already.
      if (!last || (last.state === 'running' && last.specHash === r.specHash) || samePull(last.pull, progress)) continue;
      const next = { ...last, pull: progress };
      this.reported.set(r.replicaId, next);
      changed.push(next);
    }
    if (changed.length > 0) this.outbox.push(changed);
  }

  /** A pass starts applying steps: replicas settled meanwhile are reported as they finish. */
  beginSteps(): void {
    this.applying = true;
  }

  /** All of the replica's steps in this pass are done: it is reported with the next progress listing. */
  settle(replicaId: string): void {
    this.settled.add(replicaId);
    this.armProgressReport();
  }

  /** The pass's steps are over; resolves once a progress report in flight is done. */
  async endSteps(): Promise<void> {
    this.applying = false;
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = null;
    // The pass's own listing comes after the last progress listing, so it has the last word.
    await this.progressReport;
    this.settled.clear();
  }

  /** Reports not yet sent are dropped: the hub link is closed first, and the next hello says it all. */
  close(): void {
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = null;
    this.outbox.close();
  }

  private armProgressReport(): void {
    if (!this.applying || this.progressTimer || this.progressReport || this.settled.size === 0) return;
    this.progressTimer = setTimeout(() => {
      this.progressTimer = null;
      this.progressReport = this.reportProgress().finally(() => {
        this.progressReport = null;
        this.armProgressReport();
      });
    }, this.opts.windowMs);
    this.progressTimer.unref();
  }

  /**
   * Reports the settled replicas from a listing made after their steps: what the engine says, as
   * at the end of a pass. Only replicas with no step left in the pass: a listing made while a
   * step of the replica runs could predate it, and count a start of the agent's as the engine's.
   * A listing that fails reports nothing: the pass's own listing covers them.
   */
  private async reportProgress(): Promise<void> {
    const ids = [...this.settled];
    this.settled.clear();
    let current: ObservedContainer[];
    try {
      current = await this.opts.runtime.listContainers(this.opts.nodeId);
    } catch (err) {
      this.opts.logger.warn(
        { nodeId: this.opts.nodeId, err: messageOf(err) },
        'could not list containers to report progress; the end of the pass reports it',
      );
      return;
    }
    const next = this.reportsOf(standingsOf(this.opts.assigned(), current, ids));
    // An unassigned replica whose last container went is gone for good: sent once as removed.
    const changed = changedReports(this.reported, next, ids);
    for (const id of ids) {
      const report = next.get(id);
      if (report) this.reported.set(id, report);
      else this.reported.delete(id);
    }
    if (changed.length > 0) this.outbox.push(changed);
  }

  /**
   * The reports of these replicas, from a listing. Observes their restarts: the listing must
   * postdate every step of theirs that the tally was told of.
   */
  private reportsOf(standings: ReadonlyMap<string, Standing>): Map<string, ReplicaReport> {
    const { backoff, restarts } = this.opts;
    const reports = new Map<string, ReplicaReport>();
    for (const [id, s] of standings) {
      if (runsItsSpec(s)) backoff.replicaSucceeded(id);
      const facts = {
        replicaError: backoff.replicaError(id),
        containerError: (containerId: string) => backoff.containerError(containerId),
        restarts: restarts.observe(id, s.containers, s.chosen),
        probedHealth: this.opts.probedHealth,
        crashLoop: this.opts.crashLoop?.(id),
        downNote: this.opts.downNote?.(id),
        pull: s.image !== undefined ? this.opts.pullProgress?.(s.image) : undefined,
      };
      reports.set(id, reportFor(s, facts));
    }
    return reports;
  }
}
