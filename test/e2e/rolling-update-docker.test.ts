/**
 * Rolling updates on the real engine, end to end: a hub and two agents as real processes (two
 * nodes sharing the one engine, each publishing on its own loopback address), a service with an
 * http health check and a published port on each. A client polls the service all along, the way
 * a client with two addresses does: it asks one node and, should that fail, the other. What is
 * counted: requests that got no answer from either (the goal is none), and each node's own
 * failures (the replica being replaced).
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { startE2eFleet, type E2eFleet } from '../helpers/e2e-fleet.js';
import { freePort } from '../helpers/test-ports.js';

const IMAGE = '127.0.0.1:5000/busybox:1';
const MISSING = '127.0.0.1:5000/busybox:no-such-tag';
const serveOn = (port: number) => ['sh', '-c', `mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p ${port} -h /www`];
/** Published on both agents' addresses; drawn so that no other test's port is taken (test-ports.ts). */
let HOST_PORT = 0;
const ADDRESSES = ['127.0.0.2', '127.0.0.3'];

interface Poll {
  requests: number;
  unanswered: number;
  failuresByAddress: Record<string, number>;
  stop: () => Promise<void>;
}

async function get(address: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${address}:${HOST_PORT}/index.html`, { signal: AbortSignal.timeout(1000) });
    await res.text();
    return res.ok;
  } catch {
    return false;
  }
}

/** Polls every 20 ms: each request tries one address (taking turns), then the other on failure. */
function poll(): Poll {
  const state: Poll = { requests: 0, unanswered: 0, failuresByAddress: Object.fromEntries(ADDRESSES.map((a) => [a, 0])), stop: async () => undefined };
  let running = true;
  const loop = (async () => {
    while (running) {
      const first = ADDRESSES[state.requests % 2]!;
      const second = ADDRESSES[(state.requests + 1) % 2]!;
      state.requests++;
      if (!(await get(first))) {
        state.failuresByAddress[first]!++;
        if (!(await get(second))) {
          state.failuresByAddress[second]!++;
          state.unanswered++;
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  state.stop = async () => {
    running = false;
    await loop;
  };
  return state;
}

describeDocker('rolling updates, hub and two agents on the real engine', () => {
  const service = `ru-${process.pid}`;
  let fleet: E2eFleet;
  const api: E2eFleet['api'] = (...args) => fleet.api(...args);

  const spec = (command: string[], image = IMAGE) => ({
    image,
    command,
    replicas: 2,
    ports: [{ containerPort: 8080, hostPort: HOST_PORT }],
    healthcheck: { type: 'http', port: 8080, path: '/index.html', interval: '500ms', timeout: '500ms', retries: 2 },
    update: { parallelism: 1, monitor: '2s', failureAction: 'rollback' },
  });
  const view = async () => (await api('GET', `/v1/services/${service}`)).body;

  beforeAll(async () => {
    HOST_PORT = await freePort();
    fleet = await startE2eFleet('rollout', ADDRESSES);
    expect((await api('PUT', `/v1/services/${service}`, spec(serveOn(8080)))).status).toBe(201);
    await vi.waitFor(async () => expect((await view()).status.health.healthy).toBe(2), { timeout: 60_000, interval: 250 });
  }, 120_000);

  afterAll(async () => {
    await fleet?.close();
  });

  it('rolls a version that fails its health check back by itself, the service answering throughout', async () => {
    const polling = poll();
    try {
      // Revision 2 listens on another port: its first replica runs but never passes its check.
      expect((await api('PUT', `/v1/services/${service}`, spec(serveOn(9090)))).body.rollout).toMatchObject({ state: 'updating', toRevision: 2 });
      await vi.waitFor(async () => expect((await view()).rollout.state).toBe('rolled-back'), { timeout: 90_000, interval: 250 });
      const after = await view();
      expect(after.revision).toBe(3);
      expect(after.spec.command).toEqual(serveOn(8080));
      expect(after.rollout).toMatchObject({ rollbackOf: 2, progress: { updated: 2, total: 2 } });
      expect(after.rollout.reason).toMatch(/update to revision 2 failed \(replica .* failed: health check failing.*\); rolling back to revision 1/);
      await vi.waitFor(async () => expect((await view()).status.health.healthy).toBe(2), { timeout: 60_000, interval: 250 });
    } finally {
      await polling.stop();
    }
    console.log(`rollback of a failing health check: ${JSON.stringify({ requests: polling.requests, unanswered: polling.unanswered, failuresByAddress: polling.failuresByAddress })}`);
    expect(polling.requests).toBeGreaterThan(50);
    // Stop-first with parallelism 1: one node's replica was replaced at a time, the other served.
    expect(polling.unanswered).toBe(0);
    // The replaced replica's own address did fail while the broken version ran: the client's
    // fallback, not luck, kept every request answered.
    expect(Object.values(polling.failuresByAddress).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  }, 150_000);

  it('a version whose container exits at once rolls back to rolled-back, not paused by its own crashes', async () => {
    const before = (await view()).revision;
    expect((await api('PUT', `/v1/services/${service}`, spec(['sh', '-c', 'echo bye; exit 1']))).status).toBe(200);
    await vi.waitFor(async () => expect(['rolled-back', 'paused']).toContain((await view()).rollout.state), { timeout: 90_000, interval: 250 });
    const after = await view();
    // The broken version's crashes while the rollback replaces it are not the rollback failing.
    expect(after.rollout).toMatchObject({ state: 'rolled-back', rollbackOf: before + 1, toRevision: before + 2 });
    expect(after.spec.command).toEqual(serveOn(8080));
    await vi.waitFor(async () => expect((await view()).status.health.healthy).toBe(2), { timeout: 60_000, interval: 250 });
  }, 150_000);

  it('a pull of a missing image fails the update with the registry\'s message, the old container serving on', async () => {
    const polling = poll();
    try {
      const put = await api('PUT', `/v1/services/${service}`, spec(serveOn(8080), MISSING));
      expect(put.body.rollout).toMatchObject({ state: 'updating' });
      await vi.waitFor(async () => expect((await view()).rollout.state).toBe('rolled-back'), { timeout: 90_000, interval: 250 });
      const after = await view();
      expect(after.spec.image).toBe(IMAGE);
      expect(after.rollout.reason).toMatch(/update to revision \d+ failed \(replica .* failed: .*(not found|manifest unknown)/i);
    } finally {
      await polling.stop();
    }
    console.log(`rollback of a missing image: ${JSON.stringify({ requests: polling.requests, unanswered: polling.unanswered, failuresByAddress: polling.failuresByAddress })}`);
    expect(polling.requests).toBeGreaterThan(20);
    // The old containers were never stopped: the pull failed before anything was.
    expect(polling.failuresByAddress).toEqual(Object.fromEntries(ADDRESSES.map((a) => [a, 0])));
    expect(polling.unanswered).toBe(0);
  }, 150_000);
});
