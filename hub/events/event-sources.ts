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

/** The node states that are events; `not_ready` (an engine outage) is told by the node's conditions instead. */
const STATE_EVENTS: Partial<Record<NodeState, FleetEventType>> = { ready: 'node.ready', unreachable: 'node.unreachable', lost: 'node.lost' };

/**
 * Replica events of one node told per window at most. An honest node's replicas change state at
 * the pace of pulls and restart backoffs; a device that flips them as fast as it can send status
 * frames would otherwise push every other event out of the history, and every client into overflow.
 */
export const REPLICA_EVENT_BUDGET = { eventsPerWindow: 100, windowMs: 10_000 };

export interface EventSources {
  store: Store;
  observed: Pick<ObservedState, 'subscribe'>;
  liveness: Pick<Liveness, 'subscribe'>;
  events: FleetEvents;
  /** Default REPLICA_EVENT_BUDGET on a monotonic clock. */
  replicaEventBudget?: { eventsPerWindow: number; windowMs: number; nowMs?: () => number };
}

/** Follows every source; returns the call that stops following them. */
export function wireEventSources({ store, observed, liveness, events, replicaEventBudget = REPLICA_EVENT_BUDGET }: EventSources): () => void {
  const nodeName = (nodeId: string) => store.getNode(nodeId)?.name;
  const publishAll = (list: readonly NewFleetEvent[]) => {
    for (const event of list) events.publish(event);
  };
  const { eventsPerWindow, windowMs, nowMs } = replicaEventBudget;
  const budget = new NodeLogBudget({ linesPerWindow: eventsPerWindow, windowMs, ...(nowMs ? { nowMs } : {}) });
  const stops = [
    store.subscribe((change) => {
      // A removed node's budget goes with it: one entry per node at most.
      if (change.collection === 'nodes' && change.before !== undefined && change.after === undefined) budget.forget(change.key);
      recordChanged(change, nodeName, publishAll);
    }),
    observed.subscribe((nodeId, report, previous, inHello) => {
      const event = replicaEvent(report, previous, inHello);
      if (!event) return;
      const leftOut = budget.take(nodeId);
      if (leftOut === null) return;
      const message = leftOut === 0 ? event.message : `${event.message ? `${event.message}; ` : ''}${leftOut} replica events of this node left out before this one (its replicas changed state too often)`;
      events.publish({ ...event, ...(message === undefined ? {} : { message }), node: nodeId, ...named(nodeName(nodeId)) });
    }),
    liveness.subscribe((nodeId, state) => {
      const type = STATE_EVENTS[state];
      const name = nodeName(nodeId);
      // A removed node's connection closing is no news: node.removed told it.
      if (type && name !== undefined) events.publish({ type, node: nodeId, nodeName: name });
    }),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}

const named = (nodeName: string | undefined) => (nodeName === undefined ? {} : { nodeName });

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
