/** Medians, ratios and goals of a run, as JSON lines and a markdown table. */
import type { Side } from './sides.js';
import type { Timeline } from './timeline.js';
import type { TrialResult, WorkloadName } from './trials.js';

/** Create and scale: Tether within 5 % of the raw engine. Update and rollback: below half of Swarm. */
const RAW_MARGIN = 1.05;
const SWARM_SHARE = 0.5;

export interface WorkloadSummary {
  workload: WorkloadName;
  tetherS: number | null;
  swarmS: number | null;
  rawS: number | null;
  tetherOverSwarm: number | null;
  goal: string;
  met: boolean | null;
  trialsS: Partial<Record<Side['name'], number[]>>;
  /** Tether's median trial, for update and rollback: where its time went. */
  tetherTimeline?: Timeline;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(workload: WorkloadName, bySide: Map<Side['name'], TrialResult[]>, againstRaw: boolean): WorkloadSummary {
  const secs = (side: Side['name']) => (bySide.get(side) ?? []).map((r) => r.seconds);
  const m = (side: Side['name']) => {
    const v = median(secs(side));
    return v === null ? null : round(v);
  };
  const tetherS = m('tether');
  const swarmS = m('swarm');
  const rawS = againstRaw ? m('raw') : null;
  const tetherOverSwarm = tetherS !== null && swarmS ? round(tetherS / swarmS) : null;
  const goal = againstRaw ? `Tether <= ${RAW_MARGIN} x raw engine` : `Tether < ${SWARM_SHARE} x Swarm`;
  const met = againstRaw
    ? tetherS !== null && rawS !== null
      ? tetherS <= rawS * RAW_MARGIN
      : null
    : tetherOverSwarm !== null
      ? tetherOverSwarm < SWARM_SHARE
      : null;
  const trialsS: WorkloadSummary['trialsS'] = {};
  for (const side of bySide.keys()) trialsS[side] = secs(side).map((s) => round(s));
  const summary: WorkloadSummary = { workload, tetherS, swarmS, rawS, tetherOverSwarm, goal, met, trialsS };
  // The timeline of the trial whose time is the median (the middle one once sorted).
  const tether = [...(bySide.get('tether') ?? [])].sort((a, b) => a.seconds - b.seconds);
  const mid = tether[Math.floor((tether.length - 1) / 2)];
  if (mid?.timeline) summary.tetherTimeline = mid.timeline;
  return summary;
}

export function formatTable(summaries: WorkloadSummary[], settings: { monitor: string; parallelism: number; trials: number; complete: boolean }): string {
  const cell = (x: number | null) => (x === null ? '-' : x.toFixed(2));
  const lines = [
    `Medians of ${settings.complete ? settings.trials : `the trials done before the deadline (of ${settings.trials})`}; update parallelism ${settings.parallelism}, delay 0s, monitor ${settings.monitor} on both sides.`,
    '',
    '| workload | Tether s | Swarm s | raw engine s | Tether/Swarm | goal | met |',
    '|---|---|---|---|---|---|---|',
    ...summaries.map(
      (s) => `| ${s.workload} | ${cell(s.tetherS)} | ${cell(s.swarmS)} | ${cell(s.rawS)} | ${cell(s.tetherOverSwarm)} | ${s.goal} | ${s.met === null ? '-' : s.met ? 'yes' : 'no'} |`,
    ),
  ];
  return lines.join('\n');
}
