/**
 * A seeded run of store write failures against a fleet: the hub's file writes fail at random
 * (ENOSPC and EIO; some at once, some after a delay so that other writers act meanwhile) while
 * the API creates, changes, scales and deletes services, nodes join and agents reconnect. Once the
 * faults stop: every acknowledged write is on disk, nothing refused is, memory equals the disk,
 * no container of an unchanged service was stopped or removed, and every agent converges.
 * Replays from its seed: TETHER_SEED=<seed> npx vitest run <this file>.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SimulatedContainer } from '../../agent/runtime/simulated-runtime.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { ServiceRecord } from '../../hub/store/store.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { prng } from '../helpers/prng.js';
import { SimFleet } from '../helpers/sim-fleet.js';

const SEED = Number(process.env.TETHER_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Rounds of concurrent API writes (one to three, each on its own name) or fleet events. */
const ROUNDS = 45;
/** Share of store writes that fail while faults are on. */
const FAULT_RATE = 0.35;
const MAX_AGENTS = 5;
/** Names the random writes create, change and delete. */
const CHURNED = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
/** Created before the faults start; every write to them is made to fail, so their containers must stay. */
const STEADY = ['steady-a', 'steady-b'];
const IMAGES = ['tether-test/busybox:1', 'tether-test/busybox:2'];
const COMMAND = ['/bin/httpd', '-f', '-p', '8080'];

type Body = { image: string; replicas: number; command: string[] };
/** What the API last acknowledged for a name. */
interface Acked {
  present: boolean;
  revision: number;
  spec: unknown;
  body: Body | null;
}

let fleet: SimFleet | undefined;
const proxies: FaultProxy[] = [];
const faults = { rate: 0, forced: false };
afterEach(async () => {
  faults.rate = 0;
  faults.forced = false;
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await fleet?.close();
  fleet = undefined;
});

describe(`store write failures against a fleet (seed ${SEED})`, () => {
  it('loses no acknowledged write, keeps no refused one, and removes no healthy container', async () => {
    const random = prng(SEED);
    // A stream of its own: how many writes the hub makes depends on timing, the actions must not.
    const faultRandom = prng(SEED ^ 0x5bd1e995);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    let failedWrites = 0;
    const beforeWrite = (file: string): void | Promise<void> => {
      if (!faults.forced && faults.rate === 0) return;
      const fails = faults.forced || faultRandom() < faults.rate;
      const later = faults.forced || faultRandom() < 0.5;
      // Some writes that succeed take a while too, holding back the next write of their file.
      if (!fails) return faultRandom() < 0.2 ? sleep(faultRandom() * 80) : undefined;
      failedWrites++;
      const code = faultRandom() < 0.5 ? 'ENOSPC' : 'EIO';
      const error = Object.assign(new Error(`${code}: simulated`), { code });
      // The store's health probe calls the hook without awaiting it: only a throw reaches it.
      if (!later || file.endsWith('.write-probe')) throw error;
      return sleep(20 + faultRandom() * 150).then(() => {
        throw error;
      });
    };
    const f = (fleet = await SimFleet.start({ heartbeatIntervalMs: 200, heartbeatGraceMs: 2000, lostAfterMs: 60_000 }, { beforeWrite }));

    // Every stop and removal the engine is asked for, with the container as it was then.
    const disrupted: Array<{ call: 'stop' | 'remove'; container: SimulatedContainer }> = [];
    const runtime = f.runtime;
    const find = (id: string) => runtime.containers().find((c) => c.id === id);
    const stop = runtime.stopContainer.bind(runtime);
    const remove = runtime.removeContainer.bind(runtime);
    runtime.stopContainer = async (id, timeoutS) => {
      const container = find(id);
      if (container?.state === 'running') disrupted.push({ call: 'stop', container });
      return stop(id, timeoutS);
    };
    runtime.removeContainer = async (id) => {
      const container = find(id);
      if (container) disrupted.push({ call: 'remove', container });
      return remove(id);
    };

    const agents: FaultProxy[] = [];
    const addAgent = async (): Promise<boolean> => {
      const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: Number(new URL(f.url).port) } });
      proxies.push(proxy);
      try {
        await f.addAgent({ hubUrl: proxy.url });
      } catch (error) {
        // A join whose token or node write failed: refused, and nothing of it runs.
        expect(String(error)).toMatch(/ENOSPC|EIO/);
        return false;
      }
      agents.push(proxy);
      return true;
    };
    for (let i = 0; i < 3; i++) expect(await addAgent()).toBe(true);

    const acked = new Map<string, Acked>();
    for (const name of [...CHURNED, ...STEADY]) acked.set(name, { present: false, revision: 0, spec: null, body: null });
    /** Names changed or deleted by an acknowledged write: their containers may be replaced or removed. */
    const changed = new Set<string>();
    const counts = { acked: 0, refused: 0, notFound: 0 };

    const put = async (name: string, body: Body): Promise<void> => {
      const before = acked.get(name)!;
      const res = await f.api<{ revision: number; spec: unknown; outcome: string; error?: { code: string } }>('PUT', `/v1/services/${name}`, body);
      if (res.status === 507 || res.status === 503) {
        counts.refused++;
        return;
      }
      expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
      counts.acked++;
      const { revision, spec, outcome } = res.body;
      if (outcome === 'unchanged') {
        expect(before.present).toBe(true);
        expect(revision).toBe(before.revision);
      } else {
        // Revisions grow per name, across deletes too.
        expect(revision).toBeGreaterThan(before.revision);
        if (outcome === 'updated') changed.add(name);
        expect(outcome).toBe(before.present ? 'updated' : 'created');
      }
      acked.set(name, { present: true, revision, spec, body });
    };
    const del = async (name: string): Promise<void> => {
      const before = acked.get(name)!;
      const res = await f.api('DELETE', `/v1/services/${name}`);
      if (res.status === 507 || res.status === 503) {
        counts.refused++;
        return;
      }
      if (res.status === 404) {
        // Gone only if an acknowledged delete (or nothing) left it so.
        expect(before.present, `${name} was acknowledged present, and the hub says not found`).toBe(false);
        counts.notFound++;
        return;
      }
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      counts.acked++;
      changed.add(name);
      acked.set(name, { ...before, present: false, spec: null, body: null });
    };
    const randomBody = (): Body => ({ image: pick(IMAGES), replicas: 1 + Math.floor(random() * 4), command: COMMAND });

    // The steady services, written and running before any fault.
    for (const name of STEADY) await put(name, { image: IMAGES[0]!, replicas: 3, command: COMMAND });
    const running = async (name: string) => (await f.api<{ status: { running: number; desired: number } }>('GET', `/v1/services/${name}?limit=10`)).body.status;
    await vi.waitFor(
      async () => {
        for (const name of STEADY) expect((await running(name)).running).toBe(3);
      },
      { timeout: 10_000, interval: 50 },
    );

    const writes: Record<string, (name: string) => Promise<void>> = {
      put: (name) => put(name, randomBody()),
      scale: (name) => {
        const body = acked.get(name)!.body ?? randomBody();
        return put(name, { ...body, replicas: 1 + Math.floor(random() * 4) });
      },
      delete: (name) => del(name),
    };
    const refusedChange = async (): Promise<void> => {
      // Every write fails, after a delay in which the hub's other writers (reconcile passes,
      // hellos) act on what memory holds: a refused change must never reach an agent.
      const name = pick(STEADY);
      const before = acked.get(name)!;
      faults.forced = true;
      try {
        const res =
          random() < 0.7
            ? await f.api('PUT', `/v1/services/${name}`, { ...before.body!, image: IMAGES[1]!, replicas: 1 + Math.floor(random() * 4) })
            : await f.api('DELETE', `/v1/services/${name}`);
        expect([503, 507]).toContain(res.status);
        counts.refused++;
      } finally {
        faults.forced = false;
      }
    };
    const events: Record<string, () => Promise<void>> = {
      async join() {
        if (agents.length < MAX_AGENTS) await addAgent();
      },
      async reconnect() {
        const proxy = pick(agents);
        proxy.cut();
        await sleep(50 + random() * 300);
        proxy.restore();
      },
    };

    faults.rate = FAULT_RATE;
    const done: Record<string, number> = {};
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 9 === 4) {
        await refusedChange();
        continue;
      }
      if (random() < 0.2) {
        const event = pick(Object.keys(events));
        done[event] = (done[event] ?? 0) + 1;
        await events[event]!();
        continue;
      }
      // One to three writes at once, each to its own name, so that the order per name is ours.
      const names = [...CHURNED].sort(() => random() - 0.5).slice(0, 1 + Math.floor(random() * 3));
      await Promise.all(
        names.map((name) => {
          const kind = pick(['put', 'put', 'scale', 'delete']);
          done[kind] = (done[kind] ?? 0) + 1;
          return writes[kind]!(name);
        }),
      );
      if (random() < 0.3) await sleep(random() * 200);
    }
    faults.rate = 0;
    expect(failedWrites, 'the faults did fail writes').toBeGreaterThan(0);
    expect(counts.refused, 'some API writes were refused').toBeGreaterThan(0);
    expect(counts.acked, 'some API writes were acknowledged').toBeGreaterThan(0);

    // (e) Faults off: every agent converges to its target, and every service runs as acknowledged.
    await vi.waitFor(
      async () => {
        const { body } = await f.api<{ nodes: Array<{ name: string; generation: { target: number; applied: number | null } }> }>('GET', '/v1/nodes');
        expect(body.nodes).toHaveLength(agents.length);
        for (const node of body.nodes) expect(node.generation.applied, node.name).toBe(node.generation.target);
        for (const [name, want] of acked) {
          if (!want.present) continue;
          const status = await running(name);
          expect(status.running, `${name}: ${JSON.stringify(status)}`).toBe(want.body!.replicas);
        }
      },
      { timeout: 15_000, interval: 100 },
    );

    // Agents run what was acknowledged, nothing of what was refused.
    await vi.waitFor(
      () => {
        const runningByService: Record<string, number> = {};
        for (const c of runtime.containers()) if (c.state === 'running') runningByService[c.service] = (runningByService[c.service] ?? 0) + 1;
        const wanted: Record<string, number> = {};
        for (const [name, want] of acked) if (want.present) wanted[name] = want.body!.replicas;
        expect(runningByService, 'running containers per service').toEqual(wanted);
      },
      { timeout: 5_000, interval: 100 },
    );

    // (a), (b) What a SIGKILL would leave: a second store on the same files, the first still open.
    const disk = new LowdbStore({ dir: f.storeDir, nodeShards: 4, serviceShards: 4 });
    await disk.open();
    const onDisk = new Map<string, ServiceRecord>([...disk.listServices()].map((s) => [s.name, s]));
    for (const [name, want] of acked) {
      const found = onDisk.get(name);
      if (!want.present) {
        expect(found, `${name}: deleted (or never created) as acknowledged, found on disk`).toBeUndefined();
        continue;
      }
      expect(found, `${name}: acknowledged at revision ${want.revision}, missing on disk`).toBeDefined();
      // Exactly the last acknowledged write: an earlier one would be a lost write, a later one a refused write kept.
      expect(found!.revision, name).toBe(want.revision);
      expect(found!.spec, name).toEqual(want.spec);
    }
    expect([...onDisk.keys()].sort()).toEqual([...acked].filter(([, a]) => a.present).map(([n]) => n).sort());
    // Every node that joined is on disk.
    const nodesOnDisk = new Set([...disk.listNodes()].map((n) => n.id));
    for (const agent of f.agents) expect(nodesOnDisk.has(agent.nodeId), agent.nodeId).toBe(true);

    // (c) Memory equals the disk: what the API shows, and the records behind it.
    const { body: listed } = await f.api<{ services: Array<{ name: string; revision: number; spec: unknown }> }>('GET', '/v1/services');
    expect(listed.services.map((s) => ({ name: s.name, revision: s.revision, spec: s.spec }))).toEqual(
      [...onDisk.values()].sort((a, b) => a.name.localeCompare(b.name)).map((s) => ({ name: s.name, revision: s.revision, spec: s.spec })),
    );
    await vi.waitFor(
      async () => {
        const again = new LowdbStore({ dir: f.storeDir, nodeShards: 4, serviceShards: 4 });
        await again.open();
        for (const s of f.hub.store.listServices()) expect(again.getService(s.name), s.name).toEqual(s);
      },
      { timeout: 5_000, interval: 200 },
    );

    // (d) No container of a service that no acknowledged write changed or deleted was stopped or removed.
    const healthyHit = disrupted.filter((d) => !changed.has(d.container.service));
    expect(healthyHit.map((d) => `${d.call} ${d.container.service}/${d.container.replicaId} (${d.container.image})`)).toEqual([]);
  }, 60_000);
});
