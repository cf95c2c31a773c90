/**
 * Where the time of a Tether update goes: the hub's batches as its service view shows them (polled
 * every VIEW_POLL_MS during the trial) beside the agent's own steps from its log (created,
 * started, removed container, each with its replica), all in ms from the moment the PUT was sent.
 *
 * Per batch: hubToAgentMs, from the hub showing the batch in flight to the agent's first step on
 * one of its replicas (the target sent, received, acted on); agentMs, from that first step to its
 * last replica started; startedToNextMs, from that start to the hub showing the next batch (or the
 * update finished): the monitor, the agent's report and the hub's pass. A hub time is known to
 * within one poll: the change happened between the poll before (`hubSeenBetweenMs[0]`) and the
 * one that saw it; the figures use the middle.
 */
import { readFile } from 'node:fs/promises';
import type { Api } from './tether.js';

const VIEW_POLL_MS = 25;
/** Steps kept in a timeline: an update of 10 replicas logs about 30. */
const MAX_STEPS = 200;

interface ViewSample {
  /** The poll before this one, and this one (ms from t0). */
  prevAtMs: number;
  atMs: number;
  state: string | null;
  inFlight: string[];
  reason: string | null;
}

export interface ViewRecorder {
  stop: () => Promise<ViewSample[]>;
}

type RolloutView = { state: string; inFlight: string[]; reason: string | null } | null;

/** Polls GET /v1/services/:name until stopped; keeps the samples where the rollout changed. */
export function recordView(api: Api, name: string, t0: number): ViewRecorder {
  const samples: ViewSample[] = [];
  let running = true;
  let prevAtMs = 0;
  const loop = (async () => {
    while (running) {
      try {
        const rollout = (await api<{ rollout: RolloutView }>('GET', `/v1/services/${name}`)).body.rollout;
        const atMs = Date.now() - t0;
        const sample = { prevAtMs, atMs, state: rollout?.state ?? null, inFlight: rollout?.inFlight ?? [], reason: rollout?.reason ?? null };
        prevAtMs = atMs;
        const last = samples.at(-1);
        if (!last || last.state !== sample.state || last.inFlight.join() !== sample.inFlight.join() || last.reason !== sample.reason) samples.push(sample);
      } catch {
        // a missed sample costs resolution only
      }
      await new Promise((r) => setTimeout(r, VIEW_POLL_MS));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** [ms from t0, step, the replica id's last 6 characters (its own part: the service name comes first)]. */
type AgentStep = [number, string, string];

/** The agent's container steps logged between t0 and endMs (epoch ms). */
async function agentSteps(agentLog: string, t0: number, endMs: number): Promise<Array<{ atMs: number; msg: string; replicaId: string }>> {
  const steps: Array<{ atMs: number; msg: string; replicaId: string }> = [];
  for (const line of (await readFile(agentLog, 'utf8')).split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { time?: number; msg?: string; replicaId?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof entry.time !== 'number' || entry.time < t0 || entry.time > endMs || typeof entry.replicaId !== 'string') continue;
    if (!/container/.test(entry.msg ?? '')) continue;
    steps.push({ atMs: entry.time - t0, msg: entry.msg!, replicaId: entry.replicaId });
  }
  return steps;
}

export interface BatchTimes {
  /** The rollout's states while this batch was in flight (a rollback that pauses shows both). */
  states: string[];
  replicas: number;
  hubSeenBetweenMs: [number, number];
  agentFirstStepAtMs: number | null;
  agentLastStartAtMs: number | null;
  nextAtMs: number;
}

export interface Timeline {
  acceptedMs: number;
  doneMs: number;
  batches: BatchTimes[];
  /** Means over the batches with agent steps. */
  meanHubToAgentMs: number | null;
  meanAgentMs: number | null;
  meanStartedToNextMs: number | null;
  /** The rollout as the hub showed it last in the trial. */
  finalState: string | null;
  finalReason: string | null;
  agentSteps: AgentStep[];
}

const mean = (xs: number[]): number | null => (xs.length === 0 ? null : Math.round(xs.reduce((a, b) => a + b, 0) / xs.length));
const middle = (b: BatchTimes) => (b.hubSeenBetweenMs[0] + b.hubSeenBetweenMs[1]) / 2;

export async function timeline(samples: ViewSample[], agentLog: string, t0: number, acceptedMs: number, doneMs: number): Promise<Timeline> {
  const steps = await agentSteps(agentLog, t0, t0 + doneMs + 1000);
  // A batch: consecutive samples with the same replicas in flight.
  const groups: ViewSample[][] = [];
  for (const s of samples) {
    const last = groups.at(-1);
    if (last && last[0]!.inFlight.join() === s.inFlight.join()) last.push(s);
    else groups.push([s]);
  }
  const batches: BatchTimes[] = [];
  groups.forEach((group, i) => {
    const first = group[0]!;
    if (first.inFlight.length === 0) return;
    const ids = new Set(first.inFlight);
    // The batch's window: from the poll before the hub showed it to the poll before the next
    // change (an agent step cannot come before the hub's decision).
    const fromMs = first.prevAtMs;
    const nextAtMs = groups[i + 1]?.[0]!.atMs ?? doneMs;
    const untilMs = groups[i + 1]?.[0]!.prevAtMs ?? Infinity;
    const mine = steps.filter((step) => ids.has(step.replicaId) && step.atMs >= fromMs && step.atMs < untilMs);
    const starts = mine.filter((step) => step.msg.startsWith('started container'));
    batches.push({
      states: [...new Set(group.map((s) => s.state ?? '?'))],
      replicas: ids.size,
      hubSeenBetweenMs: [first.prevAtMs, first.atMs],
      agentFirstStepAtMs: mine[0]?.atMs ?? null,
      agentLastStartAtMs: starts.at(-1)?.atMs ?? null,
      nextAtMs,
    });
  });
  const hubToAgent: number[] = [];
  const agent: number[] = [];
  const startedToNext: number[] = [];
  for (const b of batches) {
    if (b.agentFirstStepAtMs !== null) hubToAgent.push(b.agentFirstStepAtMs - middle(b));
    if (b.agentFirstStepAtMs !== null && b.agentLastStartAtMs !== null) agent.push(b.agentLastStartAtMs - b.agentFirstStepAtMs);
    if (b.agentLastStartAtMs !== null) startedToNext.push(b.nextAtMs - b.agentLastStartAtMs);
  }
  const last = samples.at(-1);
  return {
    acceptedMs,
    doneMs,
    batches,
    meanHubToAgentMs: mean(hubToAgent),
    meanAgentMs: mean(agent),
    meanStartedToNextMs: mean(startedToNext),
    finalState: last?.state ?? null,
    finalReason: last?.reason ?? null,
    agentSteps: steps.slice(0, MAX_STEPS).map((s) => [s.atMs, s.msg.replace(/ container.*/, ''), s.replicaId.slice(-6)]),
  };
}
