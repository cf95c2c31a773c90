/**
 * A node's identity: an operator removes a node for good (its connection closes, its credential is
 * refused ever after, its replicas go elsewhere, its agent stops trying), or gives it a fresh
 * credential over its connection (the old one refused after, the new one kept on the device's disk).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { Agent } from '../../agent/agent.js';
import { loadIdentity, saveIdentity, type NodeIdentity } from '../../agent/node-identity.js';
import { CloseCode } from '../../shared/protocol.js';
import { RawDevice } from '../helpers/raw-device.js';
import { ADMIN_TOKEN, helloFrame, SimFleet, simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

const busybox = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

interface ServiceView {
  status: { running: number; replicas: Array<{ replicaId: string; nodeId: string | null; state: string; error: string | null }> };
}

let fleet: SimFleet;
let dir: string;
const started: Agent[] = [];
beforeEach(async () => {
  fleet = await SimFleet.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-identity-'));
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.stop()));
  await fleet.close();
  await rm(dir, { recursive: true, force: true });
});

/** What the hub answers an upgrade with `credential`: 101 (then closed), or its refusal and body. */
function upgrade(credential: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${credential}` } });
    ws.on('error', () => undefined);
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        ws.terminate();
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
  });
}

/** An agent whose identity file lives in `dir`, as tether-agent keeps it in its data dir. */
async function agentWithIdentityFile(identity: NodeIdentity, name: string): Promise<Agent> {
  const agent = new Agent({
    identity,
    identityDir: dir,
    name,
    labels: {},
    advertiseAddress: null,
    publishAddress: '127.0.0.50',
    runtime: fleet.runtime,
    targetCache: null,
    facts: simFacts({ hostname: name }),
    logger: silentLogger,
    reconnectBaseMs: 50,
    reconnectCapMs: 500,
    retryBaseMs: 50,
  });
  started.push(agent);
  await agent.start();
  return agent;
}

async function waitRunning(name: string, running: number, where?: (nodeIds: Array<string | null>) => void): Promise<ServiceView> {
  return vi.waitFor(
    async () => {
      const view = (await fleet.api<ServiceView>('GET', `/v1/services/${name}`)).body;
      expect(view.status.running).toBe(running);
      where?.(view.status.replicas.map((r) => r.nodeId));
      return view;
    },
    { timeout: 10_000, interval: 50 },
  );
}

describe('removing a node', () => {
  it('closes its connection with nodeRemoved, refuses its credential for good, and places its replicas elsewhere', async () => {
    const [doomed, kept] = await Promise.all([fleet.addAgent({ name: 'doomed' }), fleet.addAgent({ name: 'kept' })]);
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 2 });
    await waitRunning('web', 2, (nodes) => expect(new Set(nodes)).toEqual(new Set([doomed.nodeId, kept.nodeId])));
    const credential = fleet.hub.store.getNode(doomed.nodeId)!.credentialHash;
    expect(credential).toBeTruthy();

    const removed = await fleet.api('DELETE', `/v1/nodes/${doomed.nodeId}`);
    expect(removed.status).toBe(200);
    expect(removed.body.removed).toEqual({ id: doomed.nodeId, name: 'doomed' });
    expect(removed.body.replicas).toEqual([{ service: 'web', replicaId: expect.any(String), outcome: 'placed_anew', volumeDataLeftBehind: false }]);
    // Durable before anything was told: the record is gone from the store.
    expect(fleet.hub.store.getNode(doomed.nodeId)).toBeUndefined();
    expect((await fleet.api('GET', `/v1/nodes/${doomed.nodeId}`)).status).toBe(404);

    // The agent heard it was removed, and stopped trying for good.
    await vi.waitFor(() => expect(doomed.link.nodeRemoved).toBe(true), { timeout: 5_000, interval: 20 });
    expect(doomed.link.connected).toBe(false);
    // Nothing of it stays in the hub's per-node memory: removed nodes would add up otherwise.
    expect(fleet.hub.detector.liveness(doomed.nodeId)).toBeUndefined();
    const refusedBefore = fleet.hub.gateway.refusedUnauthorized;
    await new Promise((r) => setTimeout(r, 700));
    expect(fleet.hub.gateway.refusedUnauthorized).toBe(refusedBefore);

    // Its replica runs on the other node now.
    await waitRunning('web', 2, (nodes) => expect(nodes).toEqual([kept.nodeId, kept.nodeId]));
  });

  it('refuses a removed node at the upgrade, saying so, and the agent takes that as final', async () => {
    const device = await RawDevice.connect(fleet, 'gone');
    const closed = device.closedWith;
    expect((await fleet.api('DELETE', `/v1/nodes/${device.nodeId}`)).status).toBe(200);
    expect(await closed).toMatchObject({ code: CloseCode.nodeRemoved, reason: expect.stringMatching(/removed/) });

    // Its old credential, a new hello: refused at the upgrade, with why.
    const again = await upgrade(device.credential);
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body).error).toMatchObject({ code: 'node_removed', message: expect.stringMatching(/removed by the operator/) });
    expect(fleet.hub.gateway.refusedRemoved).toBe(1);

    // An agent started afterwards with that identity (a device that was off) stops at once.
    const agent = await agentWithIdentityFile({ hubUrl: fleet.url, nodeId: device.nodeId, credential: device.credential }, 'gone');
    await vi.waitFor(() => expect(agent.link.nodeRemoved).toBe(true), { timeout: 5_000, interval: 20 });
    const refused = fleet.hub.gateway.refusedRemoved;
    await new Promise((r) => setTimeout(r, 700));
    expect(fleet.hub.gateway.refusedRemoved).toBe(refused);
  });

  it('closes a connection whose hello comes after its node was removed, keeping nothing of the node', async () => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    const { nodeId, credential } = (await fleet.hub.nodes.join(token, 'late-hello', {}))!;
    // Upgraded (the credential was good then), no hello yet: the removal finds no session to close.
    const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${credential}` } });
    ws.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve) => ws.once('open', () => resolve()));
    expect((await fleet.api('DELETE', `/v1/nodes/${nodeId}`)).status).toBe(200);
    ws.send(JSON.stringify(helloFrame('late-hello')));
    expect(await closed).toBe(CloseCode.nodeRemoved);
    expect(fleet.hub.detector.liveness(nodeId)).toBeUndefined();
    expect(fleet.hub.conditions.get(nodeId)).toBeUndefined();
  });

  it('keeps the removal in the identity file: a device restarted after a hub restart (which forgot it) does not try again', async () => {
    const device = await RawDevice.connect(fleet, 'gone-for-good');
    await fleet.api('DELETE', `/v1/nodes/${device.nodeId}`);
    await device.closedWith;
    const identity: NodeIdentity = { hubUrl: fleet.url, nodeId: device.nodeId, credential: device.credential };
    await saveIdentity(dir, identity);
    const agent = await agentWithIdentityFile(identity, 'gone-for-good');
    await vi.waitFor(async () => expect((await loadIdentity(dir))!.removed).toMatchObject({ reason: expect.stringMatching(/removed/) }), { timeout: 5_000, interval: 20 });
    await agent.stop();

    await fleet.stopHub();
    await fleet.startHub();
    const restarted = await agentWithIdentityFile((await loadIdentity(dir))!, 'gone-for-good');
    await new Promise((r) => setTimeout(r, 700));
    expect(fleet.hub.gateway.refusedUnauthorized).toBe(0);
    expect(restarted.link.connected).toBe(false);
  });
});

describe("rotating a node's credential", () => {
  it('gives the node a new credential: the old one is refused after, the new one works, and a restarted agent reads it', async () => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    const joined = (await fleet.hub.nodes.join(token, 'rotor', {}))!;
    const identity: NodeIdentity = { hubUrl: fleet.url, nodeId: joined.nodeId, credential: joined.credential, name: 'rotor' };
    await saveIdentity(dir, identity);
    const agent = await agentWithIdentityFile(identity, 'rotor');
    await vi.waitFor(() => expect(agent.link.connected).toBe(true), { timeout: 5_000, interval: 20 });
    const connectsBefore = agent.link.connects;

    const rotated = await fleet.api('POST', `/v1/nodes/${joined.nodeId}/rotate-credential`);
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    expect(rotated.body).toMatchObject({ nodeId: joined.nodeId, rotatedAt: expect.any(String) });

    // On the device's disk before the hub switched.
    const stored = (await loadIdentity(dir))!;
    expect(stored.credential).not.toBe(joined.credential);
    expect(stored.credential.startsWith(`tnc_${joined.nodeId}.`)).toBe(true);
    // The agent connects again with it; once welcomed the old one leaves the file.
    await vi.waitFor(() => expect(agent.link.connects).toBeGreaterThan(connectsBefore), { timeout: 5_000, interval: 20 });
    await vi.waitFor(async () => expect((await loadIdentity(dir))!.previousCredential).toBeUndefined(), { timeout: 5_000, interval: 20 });
    expect((await upgrade(joined.credential)).status).toBe(401);
    expect((await upgrade(stored.credential)).status).toBe(101);

    await agent.stop();
    const restarted = await agentWithIdentityFile((await loadIdentity(dir))!, 'rotor');
    await vi.waitFor(() => expect(restarted.link.connected).toBe(true), { timeout: 5_000, interval: 20 });
  });

  it('gets in with the credential it kept when the hub did not store the new one (a hub that died first)', async () => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    const joined = (await fleet.hub.nodes.join(token, 'kept', {}))!;
    // As left by a crash between the agent's write and the hub's: a new credential the hub never stored.
    const identity: NodeIdentity = { hubUrl: fleet.url, nodeId: joined.nodeId, credential: `tnc_${joined.nodeId}.${'x'.repeat(43)}`, previousCredential: joined.credential };
    await saveIdentity(dir, identity);
    const agent = await agentWithIdentityFile(identity, 'kept');
    await vi.waitFor(() => expect(agent.link.connected).toBe(true), { timeout: 5_000, interval: 20 });
    await vi.waitFor(async () => expect(await loadIdentity(dir)).toEqual({ hubUrl: fleet.url, nodeId: joined.nodeId, credential: joined.credential }), { timeout: 5_000, interval: 20 });
  });

  it('refuses with 409 for an agent of an older protocol, and for a node not connected; 404 for an unknown one', async () => {
    const old = await RawDevice.connect(fleet, 'old', { protocolVersion: 6 });
    const tooOld = await fleet.api('POST', `/v1/nodes/${old.nodeId}/rotate-credential`);
    expect(tooOld.status).toBe(409);
    expect(tooOld.body.error.code).toBe('agent_too_old');
    // It was sent nothing it cannot read, and stays connected with its credential.
    expect(old.ws.readyState).toBe(WebSocket.OPEN);
    old.close();
    await vi.waitFor(() => expect(fleet.hub.gateway.protocolVersion(old.nodeId)).toBeNull(), { timeout: 5_000, interval: 20 });
    const away = await fleet.api('POST', `/v1/nodes/${old.nodeId}/rotate-credential`);
    expect(away.status).toBe(409);
    expect(away.body.error.code).toBe('node_not_connected');
    expect((await fleet.api('POST', '/v1/nodes/nope/rotate-credential')).status).toBe(404);
    expect((await fleet.api('DELETE', '/v1/nodes/nope')).status).toBe(404);
  });
});

describe('node isolation', () => {
  it("never sends node A node B's target", async () => {
    const a = await RawDevice.connect(fleet, 'node-a');
    const b = await RawDevice.connect(fleet, 'node-b');
    await fleet.api('PUT', '/v1/services/only-b', { ...busybox, replicas: 2, constraints: ['node.name == node-b'] });
    await fleet.api('PUT', '/v1/services/only-a', { ...busybox, replicas: 1, constraints: ['node.name == node-a'] });
    await vi.waitFor(() => expect(b.lastTarget?.replicas.length).toBe(2), { timeout: 5_000, interval: 20 });
    await vi.waitFor(() => expect(a.lastTarget?.replicas.length).toBe(1), { timeout: 5_000, interval: 20 });
    await fleet.hub.loop.idle();
    for (const t of a.targets) for (const r of t.replicas) expect(r.service).toBe('only-a');
    for (const t of b.targets) for (const r of t.replicas) expect(r.service).toBe('only-b');
    a.close();
    b.close();
  });

  it("refuses and counts node A's forged report about node B's replica; B's view is unchanged", async () => {
    const a = await RawDevice.connect(fleet, 'node-a');
    const b = await RawDevice.connect(fleet, 'node-b');
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 1, constraints: ['node.name == node-b'] });
    await vi.waitFor(() => expect(b.lastTarget?.replicas.length).toBe(1), { timeout: 5_000, interval: 20 });
    b.run();
    const before = await waitRunning('web', 1);
    // A is up to date with its own (empty) target: its report is misleading, not stale.
    await fleet.hub.loop.idle();
    a.send({ type: 'ack', generation: fleet.hub.store.getNode(a.nodeId)!.generation });
    await vi.waitFor(() => expect(fleet.hub.gateway.applied(a.nodeId)?.generation).toBe(fleet.hub.store.getNode(a.nodeId)!.generation), { timeout: 5_000, interval: 20 });

    const replica = b.lastTarget!.replicas[0]!;
    a.send({ type: 'status', replicas: [{ replicaId: replica.replicaId, service: 'web', state: 'failed', specHash: replica.specHash, containerId: null, error: 'forged', restarts: 9 }] });
    await vi.waitFor(() => expect(fleet.hub.nodes.refusedReports).toBe(1), { timeout: 5_000, interval: 20 });
    const after = (await fleet.api<ServiceView>('GET', '/v1/services/web')).body;
    expect(after.status.replicas).toEqual(before.status.replicas);
    expect(fleet.hub.observed.get(replica.replicaId)).toMatchObject({ nodeId: b.nodeId, report: { state: 'running' } });
    const metrics = await fleet.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(metrics.body).toMatch(/^tether_replica_reports_refused_total\{reason="not_assigned"\} 1$/m);
    a.close();
    b.close();
  });
});
