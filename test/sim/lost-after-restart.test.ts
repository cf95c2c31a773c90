/**
 * A hub restart must not forget which nodes it had declared lost: counted as merely away, long-dead
 * nodes would hold the fleet in a disruption for good, and a later real failure would never fail
 * over.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

const FAST = { heartbeatIntervalMs: 200, heartbeatGraceMs: 800, lostAfterMs: 1500, startupGraceMs: 1000 };

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

const stateOf = async (nodeId: string) => (await fleet.api<{ state: string; fleetDisruption: unknown }>('GET', `/v1/nodes/${nodeId}`)).body;

it('keeps nodes lost across a hub restart, so that a later failure still fails over', async () => {
  fleet = await SimFleet.start(FAST);
  const agents = [];
  for (let i = 0; i < 5; i++) agents.push(await fleet.addAgent());
  const [deadA, deadB, laterDead] = agents.map((a) => a.nodeId);
  // Two devices die for good: 2 of 5, no disruption, both lost.
  await fleet.stopAgent(agents[0]!);
  await fleet.stopAgent(agents[1]!);
  await vi.waitFor(async () => {
    // Declared lost by a sweep (the view may say lost a moment before the sweep does).
    expect(fleet.hub.store.getNode(deadA!)?.lostSince).toBeTruthy();
    expect(fleet.hub.store.getNode(deadB!)?.lostSince).toBeTruthy();
  }, { timeout: 10_000, interval: 50 });

  await fleet.stopHub();
  await fleet.startHub(FAST);
  expect((await stateOf(deadA!)).state).toBe('lost');
  await vi.waitFor(() => expect(fleet.hub.gateway.connectedCount).toBe(3), { timeout: 10_000, interval: 50 });

  // Past the startup grace, one more device dies: 1 of the 3 counted nodes, so it is lost in time.
  await new Promise((r) => setTimeout(r, FAST.startupGraceMs));
  await fleet.stopAgent(agents[2]!);
  await vi.waitFor(async () => {
    const view = await stateOf(laterDead!);
    expect(view.fleetDisruption).toBeNull();
    expect(view.state).toBe('lost');
  }, { timeout: 10_000, interval: 50 });
}, 40_000);
