/** Pending reasons: why a replica could not be placed, in words for the operator who has to act on them. */
import { matchesAll } from '../spec/constraints.js';
import type { NormalizedSpec } from '../spec/service-spec.js';
import { checkFit, minProtocolVersionOf, type Misfit } from './feasibility.js';
import type { NodeStates } from './node-states.js';
import type { NodeState } from './node-usage.js';
import type { ServicePlan } from './service-plan.js';

/**
 * Reasons are written against the final state of the pass: the state a second pass starts from,
 * so that it finds the same words and reports no change.
 */
export function writePendingReasons(
  plans: readonly ServicePlan[],
  statesById: NodeStates,
): void {
  for (const plan of plans) {
    if (plan.unplaced.length === 0) continue;
    if (plan.spec.mode === 'replicated') {
      const reason = describeReplicatedShortfall(plan, statesById.all());
      for (const p of plan.unplaced) p.pendingReason = reason;
      continue;
    }
    for (const p of plan.unplaced) {
      const misfits: Misfit[] = [];
      checkFit(statesById.get(p.nodeId as string) as NodeState, plan.demand, 'all-but-own', misfits);
      // No misfit cannot happen (reservations only grow during a pass); if it did, it fits.
      p.pendingReason = misfits.length === 0 ? null : describeNodeMisfits(misfits, plan.spec);
    }
  }
}

const counted = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** What needs the newer protocol, in words: a restart policy (4), else a health check (3). */
function protocolNeedText(spec: NormalizedSpec): string {
  const what = spec.restart ? 'restart policies need' : spec.healthcheck ? 'health checks need' : 'needs';
  return `${what} an agent of protocol ${minProtocolVersionOf(spec)} or later`;
}

/** Why a replica cannot go to a node whose agent speaks `speaks` (null: unknown). */
export function protocolMisfitText(spec: NormalizedSpec, speaks: number | null): string {
  return `${protocolNeedText(spec)}; node's agent speaks ${speaks ?? 'an unknown version'}`;
}

/** The versions older agents speak, in order: "2", "1 and 2". */
function versionsText(versions: ReadonlySet<number | null>): string {
  const known = [...versions].filter((v): v is number => v !== null).sort((a, b) => a - b);
  const words = known.map(String);
  if (versions.has(null)) words.push('unknown');
  return words.length <= 1 ? (words[0] ?? 'unknown') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

function cpusText(spec: NormalizedSpec): string {
  return `need ${spec.resources.cpus} ${spec.resources.cpus === 1 ? 'cpu' : 'cpus'}`;
}

function memoryText(spec: NormalizedSpec): string {
  return `need ${spec.resources.memoryMB} MB`;
}

function describeReplicatedShortfall(plan: ServicePlan, states: readonly NodeState[]): string {
  const spec = plan.spec;
  const constraintsText = `[${spec.constraints.join(', ')}]`;
  let matching = 0;
  let notReady = 0;
  /** Cordoned or draining: up, but its operator keeps new replicas away. */
  let held = 0;
  let fitting = 0;
  let capacityUnknown = 0;
  let oldAgent = 0;
  const oldVersions = new Set<number | null>();
  let lackCpu = 0;
  let lackMemory = 0;
  const portTaken = new Map(plan.demand.hostPorts.map((key) => [key, 0]));
  for (const state of states) {
    if (!matchesAll(state.node, plan.constraints)) continue;
    matching++;
    if (!state.node.schedulable) {
      if (state.node.scheduling !== undefined && state.node.downForMs === null) held++;
      else notReady++;
      continue;
    }
    const misfits: Misfit[] = [];
    if (checkFit(state, plan.demand, 'all', misfits)) fitting++;
    for (const m of misfits) {
      if (m.kind === 'protocol') {
        oldAgent++;
        oldVersions.add(m.speaks);
      } else if (m.kind === 'capacity-unknown') capacityUnknown++;
      else if (m.kind === 'cpu') lackCpu++;
      else if (m.kind === 'memory') lackMemory++;
      else portTaken.set(m.key, (portTaken.get(m.key) ?? 0) + 1);
    }
  }

  if (matching === 0) return spec.constraints.length > 0 ? `no node matches constraints ${constraintsText}` : 'no ready node';
  if (held > 0 && notReady + held === matching) {
    const notReadyText = notReady > 0 ? `, ${counted(notReady, 'is', 'are')} not ready` : '';
    const which = spec.constraints.length > 0 ? `matching constraints ${constraintsText} ` : '';
    return `no node ${which}takes new replicas (${counted(held, 'node is', 'nodes are')} cordoned or draining${notReadyText})`;
  }
  if (notReady === matching) {
    return spec.constraints.length > 0
      ? `no ready node matches constraints ${constraintsText} (${counted(notReady, 'matching node is', 'matching nodes are')} not ready)`
      : `no ready node (${counted(notReady, 'node is', 'nodes are')} not ready)`;
  }
  const parts: string[] = [];
  if (oldAgent > 0) {
    parts.push(`${counted(oldAgent, 'has an agent', 'have agents')} of protocol ${versionsText(oldVersions)} (${protocolNeedText(spec)})`);
  }
  if (capacityUnknown > 0) parts.push(`${counted(capacityUnknown, 'has', 'have')} not reported capacity yet`);
  if (lackCpu > 0) parts.push(`${counted(lackCpu, 'lacks', 'lack')} cpu (${cpusText(spec)})`);
  if (lackMemory > 0) parts.push(`${counted(lackMemory, 'lacks', 'lack')} memory (${memoryText(spec)})`);
  for (const [key, n] of portTaken) if (n > 0) parts.push(`${counted(n, 'has', 'have')} host port ${key} taken`);
  if (held > 0) parts.push(`${counted(held, 'is', 'are')} cordoned or draining`);
  if (notReady > 0) parts.push(`${counted(notReady, 'is', 'are')} not ready`);
  return `${fitting} of ${counted(matching, 'matching node fits', 'matching nodes fit')}: ${parts.join(', ')}`;
}

export function describeNodeMisfits(misfits: readonly Misfit[], spec: NormalizedSpec): string {
  return misfits
    .map((m) => {
      switch (m.kind) {
        case 'protocol':
          return protocolMisfitText(spec, m.speaks);
        case 'capacity-unknown':
          return 'node has not reported capacity yet';
        case 'cpu':
          return `node lacks cpu (${cpusText(spec)})`;
        case 'memory':
          return `node lacks memory (${memoryText(spec)})`;
        case 'host-port':
          return `host port ${m.key} taken on node`;
      }
    })
    .join(', ');
}
