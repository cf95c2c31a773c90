/**
 * Where fleet events come from, wired once: the parts that already tell of their changes (the
 * store, what agents report, the failure detector) are followed, so that no command or handler
 * has to remember to publish an event. Heartbeats change none of them and are never events.
 */
import type { ReplicaReport } from '../../shared/protocol.js';
import type { NodeState } from '../failure-detector.js';
import type { Liveness } from '../liveness.js';
import type { ObservedState } from '../observed-state.js';
import { NodeLogBudget } from '../node-log-budget.js';
import type { Store, StoreChange } from '../store/store.js';
import type { FleetEventType, FleetEvents, NewFleetEvent } from './fleet-events.js';
import { nodeRecordEvents, serviceEvents } from './record-events.js';

/** The node states that are events: each of them (not_ready: connected, its engine does not answer). */
const STATE_EVENTS: Partial<Record<NodeState, FleetEventType>> = { ready: 'node.ready', not_ready: 'node.not_ready', unreachable: 'node.unreachable', lost: 'node.lost' };

/**
 * Replica events of one node told per window at most. An honest node's replicas change state at
 * the pace of pulls and restart backoffs; a device that flips them as fast as it can send status
 * frames would otherwise push every other event out of the history, and every client into overflow.
 */
export const REPLICA_EVENT_BUDGET = { eventsPerWindow: 100, windowMs: 10_000 };

/**
 * `node.ready` / `node.not_ready` / `node.unreachable` of one node told per window at most: a device reconnecting in
 * a tight loop tells two a time. What it ends in is told once the window has passed, so that a
 * watcher never keeps a state the node left; `node.lost` is always told.
 */
export const NODE_STATE_EVENT_BUDGET = { eventsPerWindow: 10, windowMs: 60_000 };

type Budget = { eventsPerWindow: number; windowMs: number; nowMs?: () => number };

export interface EventSources {
  store: Store;
  observed: Pick<ObservedState, 'subscribe'>;
  liveness: Pick<Liveness, 'subscribe'>;
  events: FleetEvents;
  /** Default REPLICA_EVENT_BUDGET on a monotonic clock. */
  replicaEventBudget?: Budget;
  /** Default NODE_STATE_EVENT_BUDGET on a monotonic clock. */
  nodeStateEventBudget?: Budget;
}

const budgetOf = ({ eventsPerWindow, windowMs, nowMs }: Budget) => new NodeLogBudget({ linesPerWindow: eventsPerWindow, windowMs, ...(nowMs ? { nowMs } : {}) });

/** Follows every source; returns the call that stops following them. */
export function wireEventSources({
  store,
  observed,
  liveness,
  events,
  replicaEventBudget = REPLICA_EVENT_BUDGET,
  nodeStateEventBudget = NODE_STATE_EVENT_BUDGET,
}: EventSources): () => void {
  const nodeName = (nodeId: string) => store.getNode(nodeId)?.name;
  const publishAll = (list: readonly NewFleetEvent[]) => {
    for (const event of list) events.publish(event);
  };
  const budget = budgetOf(replicaEventBudget);
  const stateBudget = budgetOf(nodeStateEventBudget);
  /** The state each node over its budget ended in, not told yet, and how many changes were left out: one entry per such node. */
  const heldStates = new Map<string, { state: NodeState; leftOut: number }>();
  const tellState = (nodeId: string, state: NodeState, leftOut: number) => {
    const type = STATE_EVENTS[state];
    const name = nodeName(nodeId);
    // A removed node's connection closing is no news: node.removed told it.
    if (!type || name === undefined) return;
    const message = leftOut > 0 ? `${leftOut} state changes of this node left out before this one (its connection flapped)` : undefined;
    events.publish({ type, node: nodeId, nodeName: name, ...(message ? { message } : {}) });
  };
  // Held states are told once their node's budget has room again.
  const flush = setInterval(() => {
    for (const [nodeId, held] of heldStates) {
      const leftOutBefore = stateBudget.take(nodeId);
      if (leftOutBefore === null) continue;
      heldStates.delete(nodeId);
      tellState(nodeId, held.state, held.leftOut);
    }
  }, nodeStateEventBudget.windowMs);
  flush.unref();
  const stops = [
    store.subscribe((change) => {
      // A removed node's budgets go with it: one entry per node at most.
      if (change.collection === 'nodes' && change.before !== undefined && change.after === undefined) {
        budget.forget(change.key);
        stateBudget.forget(change.key);
        heldStates.delete(change.key);
      }
      recordChanged(change, nodeName, publishAll);
    }),
    observed.subscribe((nodeId, report, previous, inHello) => {
      const event = replicaEvent(report, previous, inHello);
      if (!event) return;
      const leftOut = budget.take(nodeId);
      if (leftOut === null) return;
      const message = leftOut === 0 ? event.message : `${event.message ? `${event.message}; ` : ''}${leftOut} replica events of this node left out before this one (its replicas changed state too often)`;
      // Made field by field, in the order the others have: placing 100,000 replicas tells as many
      // of these, and each spread of an object into another cost more than the rest of telling it.
      const fields: NewFleetEvent = { type: event.type, replica: event.replica, service: event.service };
      if (message !== undefined) fields.message = message;
      fields.node = nodeId;
      const name = nodeName(nodeId);
      if (name !== undefined) fields.nodeName = name;
      events.publish(fields);
    }),
    liveness.subscribe((nodeId, state) => {
      if (!STATE_EVENTS[state]) return;
      const held = heldStates.get(nodeId);
      if (state === 'lost') {
        // Always told: its replicas move. What was held back before it is stale now.
        heldStates.delete(nodeId);
        tellState(nodeId, state, held?.leftOut ?? 0);
        return;
      }
      if (held) {
        held.state = state;
        held.leftOut++;
        return;
      }
      const leftOut = stateBudget.take(nodeId);
      if (leftOut === null) heldStates.set(nodeId, { state, leftOut: 0 });
      else tellState(nodeId, state, 0);
    }),
  ];
  return () => {
    clearInterval(flush);
    for (const stop of stops) stop();
    budget.close();
    stateBudget.close();
  };
}

/**
 * Events are told once a change is durable: a write the store refuses (and undoes) was never
 * the fleet's state. Most changes of a node record (a new target's generation, facts) are no
 * event and cost one comparison.
 */
function recordChanged(change: StoreChange, nodeName: (nodeId: string) => string | undefined, publish: (events: readonly NewFleetEvent[]) => void): void {
  if (change.written === null) return;
  if (change.collection === 'services') {
    const { key, before, after } = change;
    change.written.then(
      () => publish(serviceEvents(key, before, after, nodeName)),
      () => undefined,
    );
  } else if (change.collection === 'nodes' && !change.before !== !change.after) {
    const { key, before, after } = change;
    change.written.then(
      () => publish(nodeRecordEvents(key, before, after)),
      () => undefined,
    );
  }
}

/**
 * A replica's report that is news: it runs where it did not (started), or it failed where it had
 * not. The same state again (a reconnecting agent's hello, a health or pull update) is none; so is
 * a hello's report of a replica the hub held nothing of (after a hub restart: the hub learns what
 * runs, nothing changed, and 100,000 `started` would push every other event out of the history).
 */
export function replicaEvent(report: ReplicaReport, previous: ReplicaReport | undefined, inHello = false): NewFleetEvent | null {
  if (report.state === previous?.state) return null;
  if (inHello && previous === undefined) return null;
  const base = { replica: report.replicaId, service: report.service };
  if (report.state === 'running') return { type: 'replica.started', ...base, ...(report.restarts > 0 ? { message: `restarts: ${report.restarts}` } : {}) };
  if (report.state === 'failed') return { type: 'replica.failed', ...base, ...(report.error ? { message: report.error } : {}) };
  return null;
}
