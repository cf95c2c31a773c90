/**
 * A seeded run of container engine outages: the engines of random nodes go away and come back
 * (short and long outages, several nodes at once, now and then a service changed meanwhile) while
 * agents keep running. No container of an unchanged service may be stopped or removed, and once
 * every engine is back each node applies its target and every replica runs. Replays from its seed:
 * TETHER_SEED=<seed> npx vitest run <this file>.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { SimulatedRuntime, type SimulatedContainer } from '../../agent/runtime/simulated-runtime.js';
import { prng } from '../helpers/prng.js';
import { SimFleet } from '../helpers/sim-fleet.js';

const SEED = Number(process.env.TETHER_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = 30;
const NODES = 4;
const spec = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };
/** Services no write touches during the run: their containers must all stay. */
const STEADY = { web: 6, api: 3 } as const;

let fleet: SimFleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

describe(`container engine outages across a fleet (seed ${SEED})`, () => {
  it('removes no healthy container, and every replica runs once the engines are back', async () => {
    const random = prng(SEED);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    // A lostAfter far beyond the run: an engine outage alone must never move a replica.
    const f = (fleet = await SimFleet.start({ heartbeatIntervalMs: 200, heartbeatGraceMs: 1000, lostAfterMs: 120_000 }));

    // One engine per node, so that an outage is one node's; every stop and removal is recorded.
    const disrupted: Array<{ call: 'stop' | 'remove'; node: number; container: SimulatedContainer }> = [];
    const nodes: Array<{ agent: Agent; runtime: SimulatedRuntime }> = [];
    for (let i = 0; i < NODES; i++) {
      const runtime = new SimulatedRuntime({ images: [spec.image] });
      const find = (id: string) => runtime.containers().find((c) => c.id === id);
      const stop = runtime.stopContainer.bind(runtime);
      const remove = runtime.removeContainer.bind(runtime);
      runtime.stopContainer = async (id, timeoutS) => {
        const container = find(id);
        if (container?.state === 'running') disrupted.push({ call: 'stop', node: i, container });
        return stop(id, timeoutS);
      };
      runtime.removeContainer = async (id) => {
        const container = find(id);
        if (container) disrupted.push({ call: 'remove', node: i, container });
        return remove(id);
      };
      nodes.push({ agent: await f.addAgent({ runtime }), runtime });
    }

    for (const [name, replicas] of Object.entries(STEADY)) expect((await f.api('PUT', `/v1/services/${name}`, { ...spec, replicas })).status).toBe(201);
    expect((await f.api('PUT', '/v1/services/edge', { ...spec, mode: 'global', command: ['/bin/sleep', '3600'] })).status).toBe(201);
    let extraReplicas = 0;
    const wanted = (): Record<string, number> => ({ ...STEADY, edge: NODES, ...(extraReplicas > 0 ? { extra: extraReplicas } : {}) });
    const serviceStatus = async (name: string) =>
      (await f.api<{ status: { running: number; states: Record<string, number> } }>('GET', `/v1/services/${name}?limit=0`)).body.status;
    const allRunning = () =>
      vi.waitFor(
        async () => {
          for (const [name, n] of Object.entries(wanted())) expect((await serviceStatus(name)).running, name).toBe(n);
        },
        { timeout: 20_000, interval: 100 },
      );
    await allRunning();
    const runningIds = (names: string[]) =>
      nodes
        .flatMap((n) => n.runtime.containers())
        .filter((c) => c.state === 'running' && names.includes(c.service))
        .map((c) => c.id)
        .sort();
    const steadyBefore = runningIds([...Object.keys(STEADY), 'edge']);

    /** When each node's engine comes back (ms since the epoch), or 0 while it is up. */
    const downUntilMs = new Array<number>(NODES).fill(0);
    const restoreDue = () => {
      for (let i = 0; i < NODES; i++) {
        if (downUntilMs[i]! > 0 && Date.now() >= downUntilMs[i]!) {
          nodes[i]!.runtime.setEngineAvailable(true);
          downUntilMs[i] = 0;
        }
      }
    };
    const done: Record<string, number> = {};
    const actions: Record<string, () => Promise<void>> = {
      async outage() {
        const i = Math.floor(random() * NODES);
        if (downUntilMs[i]! > 0) return;
        // Short blips, and outages longer than the heartbeat grace.
        const forMs = random() < 0.5 ? 50 + random() * 400 : 1_000 + random() * 2_500;
        nodes[i]!.runtime.setEngineAvailable(false);
        downUntilMs[i] = Date.now() + forMs;
      },
      async scaleExtra() {
        // A service written while engines are away: the nodes that are down place it once back.
        extraReplicas = 1 + Math.floor(random() * 5);
        const res = await f.api('PUT', '/v1/services/extra', { ...spec, command: ['/bin/sleep', '3600'], replicas: extraReplicas });
        expect([200, 201]).toContain(res.status);
      },
      async crash() {
        // A crash of a replica on a node whose engine is up: the engine's restart policy brings it back.
        const up = nodes.filter((_, i) => downUntilMs[i] === 0);
        if (up.length === 0) return;
        const { runtime } = pick(up);
        const victim = runtime.containers().find((c) => c.state === 'running' && c.service === 'web');
        if (!victim) return;
        runtime.crash(victim.id, 1);
        await sleep(20);
        runtime.tick();
      },
    };
    const names = Object.keys(actions);
    for (let round = 0; round < ROUNDS; round++) {
      const name = random() < 0.6 ? 'outage' : pick(names);
      done[name] = (done[name] ?? 0) + 1;
      await actions[name]!();
      await sleep(50 + random() * 250);
      restoreDue();
    }
    // Outages still under way end when they were to.
    while (downUntilMs.some((t) => t > 0)) {
      await sleep(50);
      restoreDue();
    }
    expect(done.outage, 'outages happened').toBeGreaterThan(0);

    // Once every engine is back: every node applies its target and is ready, and every replica runs.
    await vi.waitFor(
      async () => {
        const { body } = await f.api<{ nodes: Array<{ name: string; state: string; generation: { target: number; applied: number | null } }> }>('GET', '/v1/nodes');
        for (const node of body.nodes) {
          expect(node.state, node.name).toBe('ready');
          expect(node.generation.applied, node.name).toBe(node.generation.target);
        }
      },
      { timeout: 20_000, interval: 100 },
    );
    await allRunning();
    const runningByService: Record<string, number> = {};
    for (const c of nodes.flatMap((n) => n.runtime.containers())) if (c.state === 'running') runningByService[c.service] = (runningByService[c.service] ?? 0) + 1;
    expect(runningByService).toEqual(wanted());

    // No container of a service left unchanged was stopped or removed: the same containers run.
    const steadyNames = [...Object.keys(STEADY), 'edge'];
    const hit = disrupted.filter((d) => steadyNames.includes(d.container.service));
    expect(hit.map((d) => `${d.call} ${d.container.service}/${d.container.replicaId} on node ${d.node}`)).toEqual([]);
    expect(runningIds(steadyNames)).toEqual(steadyBefore);
  }, 90_000);
});
