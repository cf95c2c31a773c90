import { describe, expect, it } from 'vitest';
import { diffPlacements } from '../../hub/scheduler/placement-diff.js';
import type { Placement } from '../../hub/scheduler/types.js';

const placed = (replicaId: string, nodeId: string | null = 'n1'): Placement => ({ replicaId, nodeId, pendingReason: null });
const sameNode = (a: Placement, b: Placement) => a.nodeId === b.nodeId;

function diff(olds: Placement[], news: Placement[]) {
  const gone: Placement[] = [];
  const come: Placement[] = [];
  diffPlacements(olds, news, sameNode, (a) => gone.push(a), (b) => come.push(b));
  return { gone, come };
}

/** What changed, by replica id: every id whose node differs, or that is on one side only. */
function changesById(olds: Placement[], news: Placement[]): Map<string, [string | null | undefined, string | null | undefined]> {
  const before = new Map(olds.map((p) => [p.replicaId, p.nodeId]));
  const after = new Map(news.map((p) => [p.replicaId, p.nodeId]));
  const out = new Map<string, [string | null | undefined, string | null | undefined]>();
  for (const id of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(id) !== after.get(id) || before.has(id) !== after.has(id)) out.set(id, [before.get(id), after.get(id)]);
  }
  return out;
}

/** The changes a reader sees resolving gone and come by id, as the dispatcher does. */
function resolved(olds: Placement[], news: Placement[]) {
  const { gone, come } = diff(olds, news);
  const goneById = new Map(gone.map((p) => [p.replicaId, p.nodeId]));
  const comeById = new Map(come.map((p) => [p.replicaId, p.nodeId]));
  const out = new Map<string, [string | null | undefined, string | null | undefined]>();
  for (const id of new Set([...goneById.keys(), ...comeById.keys()])) {
    const a = goneById.has(id) ? goneById.get(id) : undefined;
    const b = comeById.has(id) ? comeById.get(id) : undefined;
    if (a !== b || goneById.has(id) !== comeById.has(id)) out.set(id, [a, b]);
  }
  return out;
}

/** A small deterministic generator, so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('diffPlacements', () => {
  it('passes on nothing for the same list, or an equal copy of it', () => {
    const olds = Array.from({ length: 50 }, (_, i) => placed(`r${i}`, `n${i % 7}`));
    expect(diff(olds, olds)).toEqual({ gone: [], come: [] });
    expect(diff(olds, olds.map((p) => ({ ...p })))).toEqual({ gone: [], come: [] });
  });

  it('passes on only the dropped replica and its appended replacement, not the rest of the list', () => {
    const olds = Array.from({ length: 10_000 }, (_, i) => placed(`r${i}`, `n${i % 100}`));
    // A failover pass: replicas of a lost node leave their places; replacements are appended.
    const lost = new Set(['r10', 'r11', 'r500', 'r9000']);
    const news = [...olds.filter((p) => !lost.has(p.replicaId)), ...[...lost].map((id) => placed(`${id}-new`, 'n5'))];
    const { gone, come } = diff(olds, news);
    expect(gone.map((p) => p.replicaId).sort()).toEqual([...lost].sort());
    expect(come.map((p) => p.replicaId).sort()).toEqual([...lost].map((id) => `${id}-new`).sort());
  });

  it('gets back in step after a run of drops or insertions longer than it looks ahead', () => {
    const olds = Array.from({ length: 10_000 }, (_, i) => placed(`r${i}`, `n${i % 100}`));
    // A rolling update's batch of 50 neighbours handed over: they leave their places for the end
    // of the list (as hand-overs, same ids), behind their replacements.
    const batch = olds.slice(100, 150);
    const news = [...olds.slice(0, 100), ...olds.slice(150), ...batch.map((p) => placed(`${p.replicaId}-new`, 'n7')), ...batch.map((p) => ({ ...p, replacedBy: `${p.replicaId}-new` }))];
    const { gone, come } = diff(olds, news);
    expect(gone.map((p) => p.replicaId)).toEqual(batch.map((p) => p.replicaId));
    expect(come).toHaveLength(100);
    // And 40 new ones inserted in the middle.
    const inserted = [...olds.slice(0, 5000), ...Array.from({ length: 40 }, (_, i) => placed(`new${i}`, 'n1')), ...olds.slice(5000)];
    expect(diff(olds, inserted)).toEqual({ gone: [], come: inserted.slice(5000, 5040) });
  });

  it('passes on a replica whose node changed in place, and an insertion', () => {
    const olds = [placed('a'), placed('b'), placed('c'), placed('d')];
    const news = [placed('a'), placed('x', 'n2'), placed('b', 'n3'), placed('c'), placed('d')];
    const { gone, come } = diff(olds, news);
    expect(gone.map((p) => p.replicaId)).toEqual(['b']);
    expect(come.map((p) => p.replicaId)).toEqual(['x', 'b']);
  });

  it('whatever the edits, resolving gone and come by id gives exactly the changes by id', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = rng(seed);
      const n = Math.floor(random() * 60);
      const olds = Array.from({ length: n }, (_, i) => placed(`r${i}`, random() < 0.1 ? null : `n${Math.floor(random() * 5)}`));
      let news = olds.slice();
      const edits = Math.floor(random() * 12);
      let fresh = 0;
      for (let e = 0; e < edits; e++) {
        const kind = random();
        const at = Math.floor(random() * (news.length + 1));
        if (kind < 0.3 && news.length > 0) news.splice(Math.min(at, news.length - 1), Math.ceil(random() * 12)); // drop a run, longer than the window at times
        else if (kind < 0.5) news.splice(at, 0, ...Array.from({ length: Math.ceil(random() * 12) }, () => placed(`new${fresh++}`, 'n9')));
        else if (kind < 0.7 && news.length > 0) {
          // Move one to another place (as a hand-over appended at the end does).
          const [moved] = news.splice(Math.min(at, news.length - 1), 1);
          news.splice(Math.floor(random() * (news.length + 1)), 0, moved!);
        } else if (kind < 0.85 && news.length > 0) {
          const k = Math.min(at, news.length - 1);
          news[k] = { ...news[k]!, nodeId: `n${Math.floor(random() * 5)}` };
        } else news = news.reverse();
      }
      expect(resolved(olds, news), `seed ${seed}`).toEqual(changesById(olds, news));
    }
  });
});
