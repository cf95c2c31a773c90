/**
 * A device that flips its replicas' states as fast as it can send status frames must not push
 * every other event out of the history (and every SSE client into overflow): each node's replica
 * events have a budget per window, and what it leaves out is said with the next one told.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { wireEventSources } from '../../hub/events/event-sources.js';
import { FleetEvents } from '../../hub/events/fleet-events.js';
import type { NodeState } from '../../hub/failure-detector.js';
import type { NodeStateListener } from '../../hub/liveness.js';
import type { ReportListener } from '../../hub/observed-state.js';
import type { Store, StoreChange } from '../../hub/store/store.js';
import type { ReplicaReport } from '../../shared/protocol.js';

function setup(budget: { eventsPerWindow: number; windowMs: number }) {
  let nowMs = 0;
  let report: ReportListener = () => undefined;
  let liveness: NodeStateListener = () => undefined;
  let storeListener: (change: StoreChange) => void = () => undefined;
  const store = {
    getNode: (id: string) => ({ id, name: `edge-${id}` }),
    subscribe: (listener: (change: StoreChange) => void) => {
      storeListener = listener;
      return () => undefined;
    },
  } as unknown as Store;
  const events = new FleetEvents({ wallNowMs: () => 1_000, firstSeq: 0 });
  wireEventSources({
    store,
    observed: { subscribe: (l: ReportListener) => ((report = l), () => undefined) },
    liveness: { subscribe: (l: NodeStateListener) => ((liveness = l), () => undefined) },
    events,
    replicaEventBudget: { ...budget, nowMs: () => nowMs },
    nodeStateEventBudget: { ...budget, nowMs: () => nowMs },
  });
  const state = (nodeId: string, replicaId: string, s: 'running' | 'failed', previous?: 'running' | 'failed') => {
    const r = (st: 'running' | 'failed') => ({ replicaId, service: 'web', state: st, restarts: 0 }) as unknown as ReplicaReport;
    report(nodeId, r(s), previous === undefined ? undefined : r(previous), false);
  };
  return {
    events,
    state,
    nodeState: (nodeId: string, s: NodeState, previous: NodeState | null) => liveness(nodeId, s, previous),
    advance: (ms: number) => {
      nowMs += ms;
    },
    removeNode: (id: string) => storeListener({ collection: 'nodes', key: id, before: {}, after: undefined, written: null } as unknown as StoreChange),
  };
}

describe('replica events of one node', () => {
  it('are told up to the budget per window; the next one told says how many were left out', () => {
    const t = setup({ eventsPerWindow: 3, windowMs: 1000 });
    for (let i = 0; i < 100; i++) t.state('n1', 'web-1', i % 2 === 0 ? 'running' : 'failed', i % 2 === 0 ? 'failed' : 'running');
    expect(t.events.newest(1000).map((e) => e.type)).toEqual(['replica.started', 'replica.failed', 'replica.started']);
    // Another node is not held to the first one's budget.
    t.state('n2', 'api-1', 'running');
    expect(t.events.newest(1)[0]).toMatchObject({ type: 'replica.started', node: 'n2', replica: 'api-1' });
    t.advance(1000);
    t.state('n1', 'web-1', 'failed', 'running');
    expect(t.events.newest(1)[0]).toMatchObject({ type: 'replica.failed', node: 'n1', message: expect.stringMatching(/97 replica events of this node left out/) });
    expect(t.events.newest(1000)).toHaveLength(5);
  });
});

describe('state events of one node', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('are told up to the budget per window, a lost node always, and the state it ends in once the budget frees', async () => {
    vi.useFakeTimers();
    const t = setup({ eventsPerWindow: 3, windowMs: 1000 });
    // A device reconnecting as fast as it can: ready, unreachable, ready, ...
    for (let i = 0; i < 50; i++) t.nodeState('n1', i % 2 === 0 ? 'ready' : 'unreachable', i % 2 === 0 ? 'unreachable' : 'ready');
    expect(t.events.newest(1000).map((e) => e.type)).toEqual(['node.ready', 'node.unreachable', 'node.ready']);
    // Another node is not held to the first one's budget.
    t.nodeState('n2', 'ready', null);
    expect(t.events.newest(1)[0]).toMatchObject({ type: 'node.ready', node: 'n2' });
    // Once the window has passed, the state the flapping node ended in (unreachable, the 50th) is told.
    t.advance(1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.events.newest(1)[0]).toMatchObject({ type: 'node.unreachable', node: 'n1', message: expect.stringMatching(/46 state changes of this node left out/) });
    expect(t.events.newest(1000)).toHaveLength(5);
    // Nothing more to tell: no event repeats it.
    t.advance(5000);
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.events.newest(1000)).toHaveLength(5);

    // Over the budget again, a lost node is still told, and what was held back before it is not told after it.
    for (let i = 0; i < 10; i++) t.nodeState('n3', i % 2 === 0 ? 'ready' : 'unreachable', null);
    t.nodeState('n3', 'lost', 'unreachable');
    expect(t.events.newest(1)[0]).toMatchObject({ type: 'node.lost', node: 'n3' });
    const told = t.events.newest(1000).length;
    t.advance(1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.events.newest(1000)).toHaveLength(told);
  });
});
