/**
 * The fleet benchmark's targets, as issue 10 states them: one set for 10,000 agents and one for
 * 19,000 (5 s heartbeat, 100,000 replicas). A run at another size is judged against the nearer set
 * and its verdicts are marked as hints. Every target is checked on one run's figures; --runs N
 * then says whether each held in every run (the issue wants each met in 3 consecutive runs).
 */
import type { FleetFigures } from './fleet-figures.js';

const MiB = 1024 * 1024;

/**
 * Store bytes per 10,000-agent run before the incremental store: the mean of the last three runs
 * (2026-11-30 10:54, 12:33 and 12:37 UTC in docs/benchmarks.md: 424, 450 and 392 MiB at rename).
 * The target is a tenth of it.
 */
export const STORE_BYTES_BEFORE_MIB = 420;

export type TargetId =
  | 'rss'
  | 'idleCpu'
  | 'idleCpuWithReplicas'
  | 'burst'
  | 'storm'
  | 'hubStart'
  | 'placement'
  | 'failover'
  | 'apiGet'
  | 'apiPut'
  | 'storeBytes';

export interface TargetCheck {
  id: TargetId;
  /** What is measured, for the summary over runs. */
  figure: string;
  /** The target as the table states it. */
  target: string;
  /** null: not measured in this run. */
  ok: boolean | null;
  /** The measured value in a few words, for the summary over runs. */
  value: string;
}

interface Target {
  id: TargetId;
  figure: string;
  target: string;
  /** [value text, whether it holds], or null when the run did not measure it. */
  check: (f: FleetFigures) => [string, boolean] | null;
}

export interface TargetSet {
  agents: number;
  /** True when the run is the size the targets are stated for (agents, heartbeat, replicas). */
  exact: boolean;
  targets: Target[];
}

const fmt = (x: number, digits = 2) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

const rssRatio = (f: FleetFigures) => (f.hub.rss && f.baseline ? f.hub.rss.perAgentKiB / f.baseline.rssPerConnectionKiB : null);

function rss(max: number): Target {
  return {
    id: 'rss',
    figure: 'hub RSS per agent / bare ws per connection',
    target: `<= ${max}x baseline`,
    check: (f) => {
      const r = rssRatio(f);
      return r === null ? null : [`${fmt(r)}x`, r <= max];
    },
  };
}

function storm(maxS: number): Target {
  return {
    id: 'storm',
    figure: 'reconnect storm after SIGKILL + restart',
    target: `< ${maxS} s, no agent lost`,
    check: (f) => {
      const r = f.hub.restart;
      if (!r) return null;
      const lost = r.expected - r.reconnected;
      return [`${fmt(r.secondsFromKill)} s${lost > 0 ? `, ${lost} lost` : ''}`, lost === 0 && r.secondsFromKill < maxS];
    },
  };
}

/**
 * Issue 10's hub start: the hub on a real data dir, ready with no agent connecting (the cold-start
 * phase). The restart's start under the reconnect storm stays in the storm's row: /healthz waits
 * there behind thousands of handshakes, which is not what this target states.
 */
const hubStart: Target = {
  id: 'hubStart',
  figure: "hub start to ready on the run's data dir (SIGKILL to /healthz 200, no agent connecting)",
  target: '< 3 s (data dir of 100,000 replicas, 10,000 nodes)',
  check: (f) => {
    const c = f.hub.coldStart;
    return c?.measured ? [`${fmt(c.healthzS)} s`, c.healthzS < 3] : null;
  },
};

function placement(maxS: number): Target {
  return {
    id: 'placement',
    figure: "replicas placed and acked (100,000 at the targets' size)",
    target: `< ${maxS} s`,
    check: (f) => (f.hub.placement ? [`${fmt(f.hub.placement.seconds)} s`, f.hub.placement.seconds < maxS] : null),
  };
}

function failover(maxS: number): Target {
  return {
    id: 'failover',
    figure: 'failover after lostAfter',
    target: `<= ${maxS} s after lostAfter`,
    check: (f) => (f.hub.failover.measured ? [`${fmt(f.hub.failover.afterLostAfterS)} s`, f.hub.failover.afterLostAfterS <= maxS] : null),
  };
}

function apiPut(maxMs: number): Target {
  return {
    id: 'apiPut',
    figure: 'API PUT p99 while agents heartbeat',
    target: `p99 < ${maxMs} ms`,
    check: (f) => (f.hub.api ? [`${fmt(f.hub.api.put.p99Ms, 1)} ms`, f.hub.api.put.p99Ms < maxMs] : null),
  };
}

/** From the fleet-simulator issue, not superseded by issue 10: still reported and judged. */
const apiGet: Target = {
  id: 'apiGet',
  figure: 'API GET p99 while agents heartbeat',
  target: 'p99 < 50 ms',
  check: (f) => (f.hub.api ? [`${fmt(f.hub.api.get.p99Ms, 1)} ms`, f.hub.api.get.p99Ms < 50] : null),
};

const burst: Target = {
  id: 'burst',
  figure: 'heartbeat throughput / bare ws',
  target: '>= 50 % of baseline',
  check: (f) => {
    if (!f.hub.burst || !f.baseline?.burst) return null;
    const share = f.hub.burst.perSecond / f.baseline.burst.perSecond;
    return [`${fmt(100 * share, 0)} %`, share >= 0.5];
  },
};

function idleCpuUnder(pct: number, id: 'idleCpu' | 'idleCpuWithReplicas'): Target {
  return {
    id,
    figure: id === 'idleCpu' ? 'hub CPU idle-heartbeating' : 'hub CPU idle-heartbeating, replicas placed',
    target: `< ${pct} % of a core`,
    check: (f) => {
      const c = id === 'idleCpu' ? f.hub.idleCpu : f.hub.idleCpuWithReplicas;
      return c ? [`${fmt(c.pctOfCore, 1)} %`, c.pctOfCore < pct] : null;
    },
  };
}

/** At 19,000 agents idle CPU is judged against the bare server's, measured in the same run. */
const idleCpuVsBaseline: Target = {
  id: 'idleCpu',
  figure: 'hub CPU idle-heartbeating / bare ws',
  target: '<= 1.25x baseline',
  check: (f) => {
    const hub = f.hub.idleCpu?.pctOfCore;
    const base = f.baseline?.idleCpu?.pctOfCore;
    if (hub === undefined || base === undefined || base <= 0) return null;
    return [`${fmt(hub / base)}x (${fmt(hub, 1)} % vs ${fmt(base, 1)} %)`, hub / base <= 1.25];
  },
};

const storeBytes: Target = {
  id: 'storeBytes',
  figure: 'bytes written to the store per run (hub counters)',
  target: `<= ${fmt(STORE_BYTES_BEFORE_MIB / 10, 0)} MiB (a tenth of ${STORE_BYTES_BEFORE_MIB} MiB, the mean of the last three 10,000-agent runs before issue 10)`,
  check: (f) => {
    const bytes = f.hub.store?.hubBytes;
    if (bytes === null || bytes === undefined) return null;
    return [`${fmt(bytes / MiB, 1)} MiB`, bytes / MiB <= STORE_BYTES_BEFORE_MIB / 10];
  },
};

const AT_10K: Target[] = [
  rss(1.5),
  idleCpuUnder(25, 'idleCpu'),
  idleCpuUnder(25, 'idleCpuWithReplicas'),
  burst,
  storm(15),
  hubStart,
  placement(5),
  failover(1),
  apiGet,
  apiPut(25),
  storeBytes,
];

const AT_19K: Target[] = [rss(1.5), idleCpuVsBaseline, burst, storm(30), hubStart, placement(10), failover(2), apiGet, apiPut(50)];

/** The set a run is judged against: 19,000 agents' from 15,000 agents up, 10,000 agents' below. */
export function targetSetFor(f: FleetFigures): TargetSet {
  const c = f.config;
  const agents = c.agents >= 15_000 ? 19_000 : 10_000;
  return { agents, exact: c.agents === agents && c.heartbeatMs === 5000 && c.replicas === 100_000, targets: agents === 19_000 ? AT_19K : AT_10K };
}

export function checkTargets(f: FleetFigures): TargetCheck[] {
  return targetSetFor(f).targets.map((t) => {
    const result = t.check(f);
    return { id: t.id, figure: t.figure, target: t.target, ok: result ? result[1] : null, value: result ? result[0] : 'not measured' };
  });
}

/** How the table's verdicts read for this run: exact at the targets' size, hints otherwise. */
export function scaleNote(f: FleetFigures): string {
  const set = targetSetFor(f);
  const c = f.config;
  const stated = `${set.agents.toLocaleString('en-US')} agents, 5000 ms heartbeat, 100,000 replicas`;
  return set.exact
    ? `Targets: issue 10's for ${stated}; this run is that size, so the verdicts hold as stated.`
    : `Targets: issue 10's for ${stated}; this run has ${c.agents.toLocaleString('en-US')} agents, ${c.heartbeatMs} ms, ${c.replicas.toLocaleString('en-US')} replicas, so every verdict is only a hint.`;
}
