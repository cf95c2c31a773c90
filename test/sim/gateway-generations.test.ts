/**
 * The generation a node says it has applied is believed as applied only if the hub made it for the
 * node: at hello as in an ack. A larger one would show the node up to date with a target never
 * sent. A hello above the store's (a store restored from an older copy, or a forged hello) moves
 * the node's next target above it, and is counted apart from forged acks.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ADMIN_TOKEN, SimFleet, helloFrame, rawNode } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
beforeEach(async () => {
  fleet = await SimFleet.start();
});
afterEach(async () => {
  await fleet.close();
});

/** A device speaking the protocol by hand, saying hello with the given applied generation. */
const helloWith = (credential: string, appliedGeneration: number) => rawNode(fleet.url, credential, helloFrame('teller', { appliedGeneration }));

const metrics = async () => (await fleet.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body;

const appliedOf = async (nodeId: string) => (await fleet.api<{ generation: { target: number; applied: number | null } }>('GET', `/v1/nodes/${nodeId}`)).body.generation;

describe('generations a node says it applied', () => {
  it('does not believe a hello claiming a generation never made for the node: applied is unknown (0), and its next target goes above the claim', async () => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    const { nodeId, credential } = (await fleet.hub.nodes.join(token, 'teller', {}))!;
    const warn = vi.spyOn(fleet.app.log, 'warn');
    const ws = await helloWith(credential, 1_000_000);
    await fleet.hub.loop.idle();
    // Not a forged ack: a restored store shows the same; counted and logged on its own.
    expect(fleet.hub.gateway.acksRefused).toBe(0);
    expect(fleet.hub.gateway.helloGenerationsAhead).toBe(1);
    expect(warn.mock.calls.filter(([obj, msg]) => (obj as { nodeId?: string }).nodeId === nodeId && /ahead of the store/.test(String(msg)))).toHaveLength(1);
    const text = await metrics();
    expect(text).toMatch(/^tether_agent_hello_generations_ahead_total 1$/m);
    expect(text).toMatch(/^tether_agent_acks_refused_total 0$/m);
    const generation = await appliedOf(nodeId);
    expect(generation.applied).toBe(0);
    // A store restored from an older copy looks the same: the agent would ignore a target below
    // what it applied, so the node's next one goes out above the claim (its own node only).
    await vi.waitFor(async () => expect((await appliedOf(nodeId)).target).toBe(1_000_001), { timeout: 5_000, interval: 20 });
    ws.close();
  });

  it('counts no forged ack when the agent acks the generation its hello claimed ahead of the store', async () => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    const { credential } = (await fleet.hub.nodes.join(token, 'teller', {}))!;
    // What an agent ahead of a restored store sends: its hello, then the pending count of that generation.
    const ws = await helloWith(credential, 9);
    ws.send(JSON.stringify({ type: 'ack', generation: 9, pending: 2 }));
    ws.send(JSON.stringify({ type: 'ack', generation: 10 }));
    // The frames are handled in order: once the heartbeat after them counts, both acks have.
    ws.send(JSON.stringify({ type: 'heartbeat' }));
    await vi.waitFor(() => expect(fleet.hub.gateway.acksRefused).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    await new Promise((r) => setTimeout(r, 200));
    // Only the ack above the claim is forged.
    expect(fleet.hub.gateway.acksRefused).toBe(1);
    expect(fleet.hub.gateway.helloGenerationsAhead).toBe(1);
    ws.close();
  });

  it('believes no claim so high that the node could not count above it: that one is forged', async () => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    const { nodeId, credential } = (await fleet.hub.nodes.join(token, 'teller', {}))!;
    const ws = await helloWith(credential, 2 ** 40 + 1);
    await vi.waitFor(async () => expect((await appliedOf(nodeId)).target).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    await fleet.hub.loop.idle();
    expect(fleet.hub.gateway.acksRefused).toBe(1);
    expect(fleet.hub.gateway.helloGenerationsAhead).toBe(0);
    expect((await appliedOf(nodeId)).target).toBeLessThan(10);
    ws.close();
  });

  it('believes a hello with a generation the hub made for the node', async () => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    const { nodeId, credential } = (await fleet.hub.nodes.join(token, 'teller', {}))!;
    await fleet.api('PUT', '/v1/services/everywhere', { image: 'tether-test/busybox:1', mode: 'global' });
    const first = await helloWith(credential, 0);
    await vi.waitFor(async () => expect((await appliedOf(nodeId)).target).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    const { target } = await appliedOf(nodeId);
    first.close();
    const again = await helloWith(credential, target);
    await vi.waitFor(async () => expect((await appliedOf(nodeId)).applied).toBe(target), { timeout: 5_000, interval: 20 });
    expect(fleet.hub.gateway.acksRefused).toBe(0);
    again.close();
  });
});
