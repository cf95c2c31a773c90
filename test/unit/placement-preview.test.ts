/** The dry run's placement preview: the pure placement core over a snapshot, read back as what would change. */
import { describe, expect, it } from 'vitest';
import { MAX_PLACED_SHOWN, previewPlacement } from '../../hub/placement-preview.js';
import { newReplicaId } from '../../hub/replica-id.js';
import type { SchedService } from '../../hub/scheduler/types.js';
import { normalize } from '../helpers/spec-validation.js';
import { versionedNode } from '../helpers/sched-node.js';

describe('previewPlacement', () => {
  it('shows at most its bound of placed replicas, and counts them all', () => {
    const nodes = Array.from({ length: MAX_PLACED_SHOWN + 200 }, (_, i) => versionedNode(`n${String(i).padStart(5, '0')}`, 3));
    const agent: SchedService = { name: 'agent', spec: normalize({ image: 'busybox:1', mode: 'global' }), placements: [] };
    const preview = previewPlacement(agent, [], nodes, newReplicaId);
    expect(preview.placed).toHaveLength(MAX_PLACED_SHOWN);
    expect(preview.placedTotal).toBe(MAX_PLACED_SHOWN + 200);
    expect(preview.pending).toBe(0);
  });

  it('leaves room others hold: a host port taken on a node is not offered again', () => {
    const nodes = [versionedNode('a', 3), versionedNode('b', 3)];
    const port = { ports: [{ containerPort: 80, hostPort: 8080 }] };
    const other: SchedService = { name: 'other', spec: normalize({ image: 'nginx:1', replicas: 1, ...port }), placements: [{ replicaId: 'other.1', nodeId: 'a', pendingReason: null }] };
    const web: SchedService = { name: 'web', spec: normalize({ image: 'nginx:1', replicas: 2, ...port }), placements: [] };
    const preview = previewPlacement(web, [other], nodes, newReplicaId);
    expect(preview.placed).toEqual([{ node: 'b', nodeName: 'name-b' }]);
    expect(preview.pending).toBe(1);
    expect(preview.reasons?.[0]).toMatch(/8080/);
  });
});
