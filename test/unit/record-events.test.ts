import { describe, expect, it } from 'vitest';
import { replicaEvent } from '../../hub/events/event-sources.js';
import { nodeRecordEvents, placementEvents, serviceEvents } from '../../hub/events/record-events.js';
import type { Placement } from '../../hub/scheduler/types.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import type { ReplicaReport } from '../../shared/protocol.js';

const names: Record<string, string> = { n1: 'edge-1', n2: 'edge-2' };
const nodeName = (id: string) => names[id];
const on = (replicaId: string, nodeId: string | null, extra: Partial<Placement> = {}): Placement => ({ replicaId, nodeId, pendingReason: null, ...extra });
const pending = (replicaId: string): Placement => ({ replicaId, nodeId: null, pendingReason: 'no node fits' });

describe('placement events', () => {
  it('tells replicas placed anew, and nothing for those that stay, wherever they sit in the list', () => {
    const olds = [on('a', 'n1'), on('b', 'n2'), on('c', 'n1')];
    expect(placementEvents(olds, olds.map((p) => ({ ...p })), nodeName)).toEqual([]);
    // b removed (scale down): the rest shift position but stay put.
    expect(placementEvents(olds, [olds[0]!, olds[2]!], nodeName)).toEqual([]);
    // A rolling update's step changes a replica's revision, not its node.
    expect(placementEvents(olds, [olds[0]!, { ...olds[1]!, revision: 2 }, olds[2]!], nodeName)).toEqual([]);
    expect(placementEvents(olds, [...olds, on('d', 'n2'), on('e', 'n9')], nodeName)).toEqual([
      { type: 'replica.placed', replica: 'd', node: 'n2', nodeName: 'edge-2' },
      { type: 'replica.placed', replica: 'e', node: 'n9' },
    ]);
  });

  it('tells a pending replica when it is placed, and nothing while it waits', () => {
    expect(placementEvents([], [pending('a')], nodeName)).toEqual([]);
    expect(placementEvents([pending('a')], [on('a', 'n1')], nodeName)).toEqual([{ type: 'replica.placed', replica: 'a', node: 'n1', nodeName: 'edge-1' }]);
  });

  it('tells a replacement of a replica that left a node as moved, from that node, and says why', () => {
    const olds = [on('a', 'n1')];
    expect(placementEvents(olds, [on('a', 'n1', { replacedBy: 'b' }), on('b', 'n2', { movedFrom: 'n1' })], nodeName)).toEqual([
      { type: 'replica.moved', replica: 'b', node: 'n2', nodeName: 'edge-2', message: 'from node edge-1 (n1): replaces its replica there' },
    ]);
    expect(placementEvents(olds, [on('a', 'n1'), on('b', 'n2', { movedFrom: 'n1', movedOnRequest: true })], nodeName)[0]!.message).toBe('from node edge-1 (n1): moved by an operator');
    // A removed node has no name any more.
    expect(placementEvents([], [on('b', 'n2', { movedFrom: 'gone' })], nodeName)[0]!.message).toBe('from node gone: replaces its replica there');
    // The same replica on another node (a global replica follows its node's id).
    expect(placementEvents(olds, [on('a', 'n2')], nodeName)).toEqual([{ type: 'replica.moved', replica: 'a', node: 'n2', nodeName: 'edge-2', message: 'from node edge-1 (n1)' }]);
  });
});

const record = (revision: number, placements: Placement[] = []): ServiceRecord =>
  ({ name: 'web', spec: {} as ServiceRecord['spec'], revision, createdAt: '', updatedAt: '', placements }) as ServiceRecord;

describe('service events', () => {
  it('tells created, a new revision, deleted; placements alone are replica events', () => {
    expect(serviceEvents('web', undefined, record(1, [on('a', 'n1')]), nodeName)).toEqual([
      { type: 'service.created', service: 'web', message: 'revision 1' },
      { type: 'replica.placed', service: 'web', replica: 'a', node: 'n1', nodeName: 'edge-1' },
    ]);
    expect(serviceEvents('web', record(1), record(2), nodeName)).toEqual([{ type: 'service.updated', service: 'web', message: 'revision 1 -> 2' }]);
    expect(serviceEvents('web', record(2), record(2, [on('a', 'n1')]), nodeName).map((e) => e.type)).toEqual(['replica.placed']);
    expect(serviceEvents('web', record(3), undefined, nodeName)).toEqual([{ type: 'service.deleted', service: 'web', message: 'revision 3' }]);
  });
});

describe('node record events', () => {
  const node = { id: 'n1', name: 'edge-1' } as NodeRecord;
  it('tells a node joined or removed, and nothing for its other changes', () => {
    expect(nodeRecordEvents('n1', undefined, node)).toEqual([{ type: 'node.joined', node: 'n1', nodeName: 'edge-1' }]);
    expect(nodeRecordEvents('n1', node, undefined)).toEqual([{ type: 'node.removed', node: 'n1', nodeName: 'edge-1' }]);
    expect(nodeRecordEvents('n1', node, { ...node, generation: 2 })).toEqual([]);
  });
});

describe('replica report events', () => {
  const report = (state: ReplicaReport['state'], extra: Partial<ReplicaReport> = {}): ReplicaReport => ({
    replicaId: 'web-1',
    service: 'web',
    state,
    specHash: 'h',
    containerId: 'c',
    error: null,
    restarts: 0,
    ...extra,
  });
  it('tells a replica started or failed when its state becomes so, and nothing for the same state again', () => {
    expect(replicaEvent(report('running'), undefined)).toEqual({ type: 'replica.started', replica: 'web-1', service: 'web' });
    expect(replicaEvent(report('running', { restarts: 2 }), report('failed'))).toEqual({ type: 'replica.started', replica: 'web-1', service: 'web', message: 'restarts: 2' });
    expect(replicaEvent(report('running'), report('running'))).toBeNull();
    expect(replicaEvent(report('failed', { error: 'exit 1' }), report('running'))).toEqual({ type: 'replica.failed', replica: 'web-1', service: 'web', message: 'exit 1' });
    expect(replicaEvent(report('failed', { error: 'exit 1' }), report('failed'))).toBeNull();
    expect(replicaEvent(report('starting'), report('pending'))).toBeNull();
    // A hello: a change from what the hub held is news; what it held nothing of (a hub restart) is not.
    expect(replicaEvent(report('running'), report('failed'), true)).toMatchObject({ type: 'replica.started' });
    expect(replicaEvent(report('running'), undefined, true)).toBeNull();
    expect(replicaEvent(report('failed'), undefined, true)).toBeNull();
  });
});
