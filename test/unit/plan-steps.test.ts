import { describe, expect, it } from 'vitest';
import { bestContainer, groupByReplica, needsImage, planSteps, type PlanInput, type Step, type Swap } from '../../agent/reconciler/plan-steps.js';
import type { EngineState, ObservedContainer } from '../../agent/runtime/container-runtime.js';
import type { AssignedReplica } from '../../shared/protocol.js';
import type { RegistryAuth } from '../../shared/container-spec.js';
import { prng } from '../helpers/prng.js';

function replica(replicaId: string, specHash: string, image = 'img:1', registryAuth: RegistryAuth | null = null): AssignedReplica {
  return {
    replicaId,
    service: 'web',
    specHash,
    container: {
      image,
      command: null,
      env: {},
      ports: [],
      resources: { cpus: null, memoryMB: null },
      labels: {},
      registryAuth,
    },
  };
}

function container(id: string, replicaId: string, specHash: string, state: EngineState = 'running'): ObservedContainer {
  return {
    id,
    name: `tether-n-${replicaId}`,
    replicaId,
    service: 'web',
    specHash,
    state,
    exitCode: state === 'exited' ? 0 : null,
    restartCount: 0,
    error: null,
  };
}

function plan(input: Partial<PlanInput>): Step[] {
  return planSteps({ target: [], current: [], images: new Set(['img:1']), backingOff: new Set(), containerBackingOff: new Set(), ...input });
}

const start = (containerId: string, replicaId: string, swap: Swap | null = null): Step => ({ kind: 'start', containerId, replicaId, swap });
const standIn = (containerId: string, replicaId: string): Step => ({ kind: 'start-stand-in', containerId, replicaId });
const create = (r: AssignedReplica, swap: Swap | null = null): Step => ({ kind: 'create', replica: r, swap });

describe('planSteps rules', () => {
  const auth: RegistryAuth = { username: 'u', password: 'p' };

  const cases: Array<{ name: string; input: Partial<PlanInput>; steps: Step[] }> = [
    { name: 'nothing wanted, nothing there', input: {}, steps: [] },
    {
      name: 'everything runs: nothing to do',
      input: { target: [replica('a', 'h1'), replica('b', 'h1')], current: [container('c1', 'a', 'h1'), container('c2', 'b', 'h1')] },
      steps: [],
    },
    {
      name: 'a container whose replica is not assigned is removed',
      input: { current: [container('c1', 'a', 'h1')] },
      steps: [{ kind: 'remove', containerId: 'c1', replicaId: 'a', reason: 'unassigned' }],
    },
    {
      name: 'a wanted replica without a container and its image present is created',
      input: { target: [replica('a', 'h1')] },
      steps: [create(replica('a', 'h1'))],
    },
    {
      // Swapped only once the new container exists: a create the engine refuses leaves it running,
      // and a start it refuses starts it again.
      name: 'wrong spec hash with the image present: the new one created, swapped in for the old',
      input: { target: [replica('a', 'h2')], current: [container('c1', 'a', 'h1')] },
      steps: [create(replica('a', 'h2'), { oldIds: ['c1'], fallbackId: 'c1' })],
    },
    {
      name: 'wrong spec hash with the image absent: pulled first, the old container keeps serving',
      input: { target: [replica('a', 'h2', 'img:2')], current: [container('c1', 'a', 'h1')] },
      steps: [{ kind: 'pull', image: 'img:2', auth: null, replicaIds: ['a'] }],
    },
    {
      name: 'one pull per absent image, grouping its replicas, with the first credentials given',
      input: {
        target: [replica('a', 'h1', 'img:2'), replica('b', 'h1', 'img:2', auth), replica('c', 'h3', 'img:3'), replica('d', 'h1')],
      },
      steps: [
        { kind: 'pull', image: 'img:2', auth, replicaIds: ['a', 'b'] },
        { kind: 'pull', image: 'img:3', auth: null, replicaIds: ['c'] },
        create(replica('d', 'h1')),
      ],
    },
    {
      name: 'duplicates: the running one of the right hash is kept',
      input: { target: [replica('a', 'h1')], current: [container('c1', 'a', 'h1', 'exited'), container('c2', 'a', 'h1'), container('c3', 'a', 'h0')] },
      steps: [
        { kind: 'remove', containerId: 'c1', replicaId: 'a', reason: 'duplicate' },
        { kind: 'remove', containerId: 'c3', replicaId: 'a', reason: 'outdated' },
      ],
    },
    {
      name: 'two running duplicates: the lower id is kept, whatever the listing order',
      input: { target: [replica('a', 'h1')], current: [container('c9', 'a', 'h1'), container('c2', 'a', 'h1')] },
      steps: [{ kind: 'remove', containerId: 'c9', replicaId: 'a', reason: 'duplicate' }],
    },
    ...(['exited', 'created'] as const).map((state) => ({
      name: `a right-hash container in '${state}' is started`,
      input: { target: [replica('a', 'h1')], current: [container('c1', 'a', 'h1', state)] },
      steps: [start('c1', 'a')],
    })),
    ...(['restarting', 'paused'] as const).map((state) => ({
      name: `a right-hash container in '${state}' is left to the engine`,
      input: { target: [replica('a', 'h1')], current: [container('c1', 'a', 'h1', state)] },
      steps: [] as Step[],
    })),
    {
      name: "a 'dead' container cannot be started: removed and made again",
      input: { target: [replica('a', 'h1')], current: [container('c1', 'a', 'h1', 'dead')] },
      steps: [
        { kind: 'remove', containerId: 'c1', replicaId: 'a', reason: 'dead' },
        create(replica('a', 'h1')),
      ],
    },
    {
      name: "a container already 'removing' is waited for, not removed again nor replaced yet",
      input: { target: [replica('a', 'h1')], current: [container('c1', 'a', 'h1', 'removing'), container('c2', 'b', 'h1', 'removing')] },
      steps: [],
    },
    {
      name: 'backing off: no pull, create or start; the outdated container stays; unassigned ones still go',
      input: {
        target: [replica('a', 'h1', 'img:2'), replica('b', 'h1'), replica('c', 'h1'), replica('d', 'h2')],
        current: [container('c1', 'c', 'h1', 'exited'), container('c2', 'd', 'h1'), container('c3', 'x', 'h1')],
        backingOff: new Set(['a', 'b', 'c', 'd']),
      },
      steps: [{ kind: 'remove', containerId: 'c3', replicaId: 'x', reason: 'unassigned' }],
    },
    {
      name: 'removes come before every other step',
      input: {
        target: [replica('b', 'h1'), replica('a', 'h2'), replica('c', 'h1', 'img:2')],
        current: [container('c1', 'x', 'h1'), container('c2', 'a', 'h1'), container('c3', 'b', 'h1', 'exited')],
      },
      steps: [
        { kind: 'remove', containerId: 'c1', replicaId: 'x', reason: 'unassigned' },
        { kind: 'pull', image: 'img:2', auth: null, replicaIds: ['c'] },
        create(replica('a', 'h2'), { oldIds: ['c2'], fallbackId: 'c2' }),
        start('c3', 'b'),
      ],
    },
    // Until the new spec runs, the old container is the replica: it is kept up, whatever holds
    // the replacement back (a pull under way or failing, a create backing off, a removal pending).
    ...(['exited', 'created'] as const).map((state) => ({
      name: `an outdated container in '${state}' whose new image is still to be pulled is started as a stand-in`,
      input: { target: [replica('a', 'h2', 'img:2')], current: [container('c1', 'a', 'h1', state)] },
      steps: [{ kind: 'pull', image: 'img:2', auth: null, replicaIds: ['a'] } as Step, standIn('c1', 'a')],
    })),
    {
      name: 'a replica backing off (its pull or create failed) still gets its exited outdated container started',
      input: { target: [replica('a', 'h2', 'img:2')], current: [container('c1', 'a', 'h1', 'exited')], backingOff: new Set(['a']) },
      steps: [standIn('c1', 'a')],
    },
    {
      name: 'the best outdated container stands in: a running one is left alone, nothing else is started',
      input: {
        target: [replica('a', 'h2', 'img:2')],
        current: [container('c1', 'a', 'h1', 'exited'), container('c2', 'a', 'h0', 'running')],
        backingOff: new Set(['a']),
      },
      steps: [],
    },
    {
      name: 'of several stopped outdated containers, only the one that counts (lowest id) is started',
      input: { target: [replica('a', 'h2', 'img:2')], current: [container('c7', 'a', 'h1', 'exited'), container('c3', 'a', 'h0', 'exited')], backingOff: new Set(['a']) },
      steps: [standIn('c3', 'a')],
    },
    {
      name: 'an outdated container while another of the replica is being removed is started, nothing is created',
      input: { target: [replica('a', 'h2')], current: [container('c1', 'a', 'h1', 'exited'), container('c2', 'a', 'h2', 'removing')] },
      steps: [standIn('c1', 'a')],
    },
    {
      name: "a stand-in whose own start failed recently is left alone until its retry",
      input: {
        target: [replica('a', 'h2', 'img:2')],
        current: [container('c1', 'a', 'h1', 'exited')],
        backingOff: new Set(['a']),
        containerBackingOff: new Set(['c1']),
      },
      steps: [],
    },
    {
      name: 'of several outdated containers, all are swapped out; the serving one is the fallback',
      input: { target: [replica('a', 'h2')], current: [container('c7', 'a', 'h1', 'exited'), container('c3', 'a', 'h0')] },
      steps: [create(replica('a', 'h2'), { oldIds: ['c7', 'c3'], fallbackId: 'c3' })],
    },
    {
      name: 'a stopped outdated container is the fallback of a swap, unless its own start is backing off',
      input: {
        target: [replica('a', 'h2'), replica('b', 'h2')],
        current: [container('c1', 'a', 'h1', 'exited'), container('c2', 'b', 'h1', 'exited')],
        containerBackingOff: new Set(['c2']),
      },
      steps: [create(replica('a', 'h2'), { oldIds: ['c1'], fallbackId: 'c1' }), create(replica('b', 'h2'), { oldIds: ['c2'], fallbackId: null })],
    },
    // A new container that does not run yet (the agent died between its create and the swap, or
    // its start failed) is started by a swap, never by removing the old one first.
    ...(['created', 'exited'] as const).map((state) => ({
      name: `a right-hash container in '${state}' beside a running outdated one is swapped in: nothing removed`,
      input: { target: [replica('a', 'h2')], current: [container('c1', 'a', 'h1'), container('c2', 'a', 'h2', state)] },
      steps: [start('c2', 'a', { oldIds: ['c1'], fallbackId: 'c1' })],
    })),
    {
      name: 'a right-hash container not running while its replica backs off: the running outdated one stays',
      input: { target: [replica('a', 'h2')], current: [container('c1', 'a', 'h1'), container('c2', 'a', 'h2', 'created')], backingOff: new Set(['a']) },
      steps: [],
    },
    {
      name: 'a right-hash container not running while its replica backs off: a stopped outdated one stands in',
      input: {
        target: [replica('a', 'h2')],
        current: [container('c1', 'a', 'h1', 'exited'), container('c2', 'a', 'h2', 'exited')],
        backingOff: new Set(['a']),
      },
      steps: [standIn('c1', 'a')],
    },
    ...(['restarting', 'paused'] as const).map((state) => ({
      name: `a right-hash container in '${state}' is the engine's: the outdated one is neither removed nor started`,
      input: { target: [replica('a', 'h2')], current: [container('c1', 'a', 'h1'), container('c2', 'a', 'h2', state)] },
      steps: [] as Step[],
    })),
    {
      name: 'the outdated containers go once the right-hash one runs',
      input: { target: [replica('a', 'h2')], current: [container('c1', 'a', 'h1', 'exited'), container('c2', 'a', 'h2'), container('c3', 'a', 'h0')] },
      steps: [
        { kind: 'remove', containerId: 'c1', replicaId: 'a', reason: 'outdated' },
        { kind: 'remove', containerId: 'c3', replicaId: 'a', reason: 'outdated' },
      ],
    },
    ...(['restarting', 'paused'] as const).map((state) => ({
      name: `an outdated container in '${state}' is left to the engine while the new image is pulled`,
      input: { target: [replica('a', 'h2', 'img:2')], current: [container('c1', 'a', 'h1', state)] },
      steps: [{ kind: 'pull', image: 'img:2', auth: null, replicaIds: ['a'] } as Step],
    })),
    // A removal the engine refused is not asked again, every pass, before its retry delay.
    {
      name: 'an outdated container whose removal is backing off is left until its retry; the others go',
      input: {
        target: [replica('a', 'h2')],
        current: [container('c1', 'a', 'h1', 'exited'), container('c2', 'a', 'h2'), container('c3', 'a', 'h0', 'exited')],
        containerBackingOff: new Set(['c1']),
      },
      steps: [{ kind: 'remove', containerId: 'c3', replicaId: 'a', reason: 'outdated' }],
    },
    {
      name: 'a duplicate whose removal is backing off is left until its retry',
      input: { target: [replica('a', 'h1')], current: [container('c1', 'a', 'h1'), container('c2', 'a', 'h1', 'exited')], containerBackingOff: new Set(['c2']) },
      steps: [],
    },
    {
      name: 'an unassigned container whose removal failed is left while its replica backs off',
      input: { current: [container('c1', 'a', 'h1'), container('c2', 'b', 'h1')], backingOff: new Set(['a']) },
      steps: [{ kind: 'remove', containerId: 'c2', replicaId: 'b', reason: 'unassigned' }],
    },
    {
      name: 'a dead container whose removal failed is left while its replica backs off; the stand-in serves',
      input: { target: [replica('a', 'h2')], current: [container('c1', 'a', 'h2', 'dead'), container('c2', 'a', 'h1', 'exited')], backingOff: new Set(['a']) },
      steps: [standIn('c2', 'a')],
    },
  ];

  it.each(cases)('$name', ({ input, steps }) => {
    expect(plan(input)).toEqual(steps);
  });

  it('planSteps(x, x as current) is empty when everything runs', () => {
    const target = Array.from({ length: 20 }, (_, i) => replica(`r${i}`, `h${i % 3}`, `img:${i % 4}`));
    const current = target.map((r, i) => container(`c${i}`, r.replicaId, r.specHash));
    expect(planSteps({ target, current, images: new Set(), backingOff: new Set(), containerBackingOff: new Set() })).toEqual([]);
  });
});


const ALL_STATES: EngineState[] = ['created', 'running', 'restarting', 'paused', 'exited', 'dead', 'removing'];

interface Model {
  target: AssignedReplica[];
  current: ObservedContainer[];
  images: Set<string>;
  backingOff: Set<string>;
  containerBackingOff: Set<string>;
}

function randomModel(random: () => number): Model {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const replicaIds = Array.from({ length: 6 }, (_, i) => `r${i}`);
  const hashes = ['h0', 'h1', 'h2'];
  const images = ['img:0', 'img:1', 'img:2'];
  const target = replicaIds.filter(() => random() < 0.6).map((id) => replica(id, pick(hashes), pick(images)));
  const current = Array.from({ length: Math.floor(random() * 10) }, (_, i) =>
    container(`c${i}`, pick(replicaIds), pick(hashes), pick(ALL_STATES)),
  );
  return {
    target,
    current,
    images: new Set(images.filter(() => random() < 0.5)),
    backingOff: new Set(replicaIds.filter(() => random() < 0.2)),
    containerBackingOff: new Set(current.filter(() => random() < 0.1).map((c) => c.id)),
  };
}

/** The engine as the planner assumes it: every step succeeds, and a swap removes what it replaced. */
function applySteps(model: Model, steps: Step[], nextId: () => string): void {
  for (const step of steps) {
    switch (step.kind) {
      case 'remove':
        model.current = model.current.filter((c) => c.id !== step.containerId);
        break;
      case 'pull':
        model.images.add(step.image);
        break;
      case 'create':
        expect(model.images.has(step.replica.container.image)).toBe(true);
        model.current = model.current.filter((c) => !step.swap?.oldIds.includes(c.id));
        model.current.push(container(nextId(), step.replica.replicaId, step.replica.specHash, 'running'));
        break;
      case 'start':
        model.current = model.current.filter((c) => !step.swap?.oldIds.includes(c.id));
        model.current = model.current.map((c) => (c.id === step.containerId ? { ...c, state: 'running' } : c));
        break;
      case 'start-stand-in':
        model.current = model.current.map((c) => (c.id === step.containerId ? { ...c, state: 'running' } : c));
        break;
    }
  }
}

const startable = (c: ObservedContainer) => c.state === 'exited' || c.state === 'created';

/** What must hold of any plan, whatever state it was made from. */
function checkPlan(model: Model, steps: Step[]): void {
  const wanted = new Map(model.target.map((r) => [r.replicaId, r]));
  const byId = new Map(model.current.map((c) => [c.id, c]));
  const firstOther = steps.findIndex((s) => s.kind !== 'remove');
  if (firstOther >= 0) expect(steps.slice(firstOther).some((s) => s.kind === 'remove')).toBe(false);

  const removed = new Set<string>();
  for (const s of steps) {
    if (s.kind !== 'remove') continue;
    expect(removed.has(s.containerId)).toBe(false);
    removed.add(s.containerId);
    const c = byId.get(s.containerId);
    expect(c).toBeDefined();
    expect(c!.state).not.toBe('removing');
    // A refused removal waits out its retry delay.
    expect(model.containerBackingOff.has(s.containerId)).toBe(false);
    if (s.reason === 'unassigned' || s.reason === 'dead') expect(model.backingOff.has(s.replicaId)).toBe(false);
  }

  // Never leave a replica unserved by a removal: a running container of an assigned replica, and
  // any outdated one, goes only while a running container of the right hash stays.
  for (const s of steps) {
    if (s.kind !== 'remove') continue;
    const c = byId.get(s.containerId)!;
    const r = wanted.get(c.replicaId);
    if (!r || (c.state !== 'running' && s.reason !== 'outdated')) continue;
    const kept = model.current.filter(
      (o) => o.replicaId === c.replicaId && o.specHash === r.specHash && o.state === 'running' && !removed.has(o.id),
    );
    expect(kept.length, `${s.containerId} removed while nothing of the right hash runs`).toBe(1);
  }

  const makes = (s: Step, replicaId: string) => (s.kind === 'create' ? s.replica.replicaId : s.kind === 'start' ? s.replicaId : null) === replicaId;
  for (const r of model.target) {
    const mine = model.current.filter((c) => c.replicaId === r.replicaId && c.state !== 'removing' && c.state !== 'dead');
    const outdated = mine.filter((c) => c.specHash !== r.specHash);
    const best = bestContainer(outdated);
    // A swap stops every outdated container, and falls back on the one that can serve.
    for (const s of steps) {
      if (!makes(s, r.replicaId) || s.kind === 'remove' || s.kind === 'pull' || s.kind === 'start-stand-in' || s.kind === 'restart') continue;
      if (outdated.length === 0) expect(s.swap).toBeNull();
      else {
        expect([...s.swap!.oldIds].sort()).toEqual(outdated.map((c) => c.id).sort());
        const canServe = best!.state === 'running' || (startable(best!) && !model.containerBackingOff.has(best!.id));
        expect(s.swap!.fallbackId).toBe(canServe ? best!.id : null);
      }
    }
    // Until its new container runs or is made to run, the best outdated container is kept up.
    if (mine.some((c) => c.specHash === r.specHash && ['running', 'restarting', 'paused'].includes(c.state))) continue;
    if (steps.some((s) => makes(s, r.replicaId))) continue;
    if (!best || !startable(best) || model.containerBackingOff.has(best.id)) continue;
    expect(steps).toContainEqual({ kind: 'start-stand-in', containerId: best.id, replicaId: r.replicaId });
  }

  const touched = (s: Step) => (s.kind === 'create' ? [s.replica.replicaId] : s.kind === 'pull' ? s.replicaIds : s.kind === 'start' ? [s.replicaId] : []);
  const created = new Set<string>();
  const pulled = new Set<string>();
  for (const s of steps) {
    // A stand-in start keeps an outdated container up whatever holds its replacement back, unless
    // that container's own start is backing off.
    if (s.kind === 'start-stand-in') {
      expect(model.containerBackingOff.has(s.containerId)).toBe(false);
      const r = wanted.get(s.replicaId)!;
      expect(byId.get(s.containerId)!.specHash).not.toBe(r.specHash);
      continue;
    }
    for (const id of touched(s)) expect(model.backingOff.has(id)).toBe(false);
    if (s.kind === 'create') {
      expect(created.has(s.replica.replicaId)).toBe(false);
      created.add(s.replica.replicaId);
      expect(model.images.has(s.replica.container.image)).toBe(true);
    }
    if (s.kind === 'pull') {
      expect(pulled.has(s.image)).toBe(false);
      pulled.add(s.image);
      expect(model.images.has(s.image)).toBe(false);
    }
  }
}

describe('planSteps properties', () => {
  const seeds = Array.from({ length: 500 }, (_, i) => i + 1);

  it.each(seeds)('seed %i: converges, stays converged, never kills a healthy container', (seed) => {
    const random = prng(seed);
    const model = randomModel(random);
    let idSequence = 0;
    const nextId = () => `new${++idSequence}`;

    // A pull unlocks the create (and its swap for the outdated containers) in the next plan, so
    // convergence takes at most two rounds.
    let steps: Step[] = [];
    for (let round = 0; round < 3; round++) {
      steps = planSteps(model);
      checkPlan(model, steps);
      if (steps.length === 0) break;
      expect(round, `seed ${seed}: still planning after two rounds`).toBeLessThan(2);
      applySteps(model, steps, nextId);
    }
    expect(steps, `seed ${seed}`).toEqual([]);

    // Converged means: every assigned replica not backing off has exactly one container of the
    // right hash that is running (or in the engine's hands), unless a removal is still under way;
    // outdated ones stay only beside one the engine is restarting or that is paused.
    // Containers whose removal waits out its retry delay are left as they are.
    const waiting = (c: ObservedContainer) => model.containerBackingOff.has(c.id);
    for (const r of model.target) {
      const all = model.current.filter((c) => c.replicaId === r.replicaId);
      if (model.backingOff.has(r.replicaId) || all.some((c) => c.state === 'removing')) continue;
      const keeper = bestContainer(all.filter((c) => c.specHash === r.specHash));
      const mine = all.filter((c) => c === keeper || !waiting(c));
      const right = mine.filter((c) => c.specHash === r.specHash);
      expect(right.length, `seed ${seed} replica ${r.replicaId}`).toBe(1);
      expect(['running', 'restarting', 'paused']).toContain(right[0]!.state);
      if (right[0]!.state === 'running') expect(mine.length, `seed ${seed} replica ${r.replicaId}`).toBe(1);
    }
    const assigned = new Set(model.target.map((r) => r.replicaId));
    for (const c of model.current) {
      if (!assigned.has(c.replicaId) && !waiting(c) && !model.backingOff.has(c.replicaId)) expect(c.state, `seed ${seed}`).toBe('removing');
    }
  });
});

describe('groupByReplica', () => {
  it('groups the containers by replica, in listing order', () => {
    const c1 = container('c1', 'a', 'h1');
    const c2 = container('c2', 'b', 'h1');
    const c3 = container('c3', 'a', 'h2', 'exited');
    expect([...groupByReplica([c1, c2, c3])]).toEqual([
      ['a', [c1, c3]],
      ['b', [c2]],
    ]);
  });
});

describe('needsImage', () => {
  it('is true only for a replica with no container of its spec to keep (it needs a create or a pull)', () => {
    const r = replica('a', 'h2');
    expect(needsImage(r, [])).toBe(true);
    expect(needsImage(r, [container('c1', 'a', 'h1')])).toBe(true);
    expect(needsImage(r, [container('c1', 'a', 'h2', 'dead')])).toBe(true);
    expect(needsImage(r, [container('c1', 'a', 'h2', 'exited')])).toBe(false);
    expect(needsImage(r, [container('c1', 'a', 'h1'), container('c2', 'a', 'h2', 'created')])).toBe(false);
  });
});

describe('planSteps on a provisional target (the cache, before the hub confirms one)', () => {
  // The cache may be older than what runs: it says h1 where h2 (newer) runs, and lacks replica b.
  const current = [container('c1', 'a', 'h2'), container('c2', 'b', 'h1'), container('c3', 'c', 'h1', 'dead')];
  const target = [replica('a', 'h1'), replica('c', 'h1')];

  it('removes nothing but dead containers, replaces no running container, and makes what is missing', () => {
    expect(plan({ target, current, provisional: true })).toEqual([
      { kind: 'remove', containerId: 'c3', replicaId: 'c', reason: 'dead' },
      create(replica('c', 'h1')),
    ]);
  });

  it('starts a stopped container of the target, and the hub-confirmed target does the rest', () => {
    const stopped = [container('c1', 'a', 'h1', 'exited'), container('c2', 'b', 'h1')];
    expect(plan({ target: [replica('a', 'h1')], current: stopped, provisional: true })).toEqual([start('c1', 'a')]);
    // Confirmed by the hub, the same state is planned as usual: b is not assigned, a is replaced.
    const confirmed = plan({ target, current });
    expect(confirmed).toContainEqual({ kind: 'remove', containerId: 'c2', replicaId: 'b', reason: 'unassigned' });
    expect(confirmed).toContainEqual(create(replica('a', 'h1'), { oldIds: ['c1'], fallbackId: 'c1' }));
  });
});
