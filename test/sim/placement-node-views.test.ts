/**
 * The nodes a scheduling pass sees: a usable node whose record did not change is the same object
 * pass after pass (the settled-usage cache then knows it unchanged without comparing it), and any
 * change (a node going away, an operator's label) gives a fresh one with what changed.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

// A grace far above the interval: under a loaded machine a late heartbeat must not make the steady node briefly unusable (a fresh view).
const FAST = { heartbeatIntervalMs: 200, heartbeatGraceMs: 5000, lostAfterMs: 10_000, startupGraceMs: 1000 };

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

it('keeps the objects of unchanged usable nodes and renews those that changed', async () => {
  fleet = await SimFleet.start(FAST);
  const agents = [];
  for (let i = 0; i < 3; i++) agents.push(await fleet.addAgent());
  const [away, relabelled, steady] = agents.map((a) => a.nodeId);
  await vi.waitFor(() => expect(fleet.hub.nodes.forPlacement().every((n) => n.schedulable)).toBe(true), { timeout: 10_000, interval: 50 });
  const byId = () => new Map(fleet.hub.nodes.forPlacement().map((n) => [n.id, n]));
  const first = byId();
  const steadyRecord = fleet.hub.nodes.get(steady!);
  expect(byId().get(steady!)).toBe(first.get(steady!));

  await fleet.stopAgent(agents[0]!);
  const res = await fleet.api('PATCH', `/v1/nodes/${relabelled}`, { labels: { zone: 'b' } });
  expect(res.status).toBe(200);
  await vi.waitFor(() => expect(byId().get(away!)?.downForMs).not.toBeNull(), { timeout: 10_000, interval: 50 });
  const second = byId();
  // The view is kept as long as the node's record is the same object: a loaded machine may let
  // the steady agent's hello land again meanwhile (a new record), and then the view is new.
  if (fleet.hub.nodes.get(steady!) === steadyRecord) expect(second.get(steady!)).toBe(first.get(steady!));
  else expect(second.get(steady!)).not.toBe(first.get(steady!));
  expect(second.get(relabelled!)).not.toBe(first.get(relabelled!));
  expect(second.get(relabelled!)?.labels).toEqual({ zone: 'b' });
  expect(second.get(away!)).toMatchObject({ schedulable: false });
  // Down nodes are made fresh every pass: their away-time grows.
  expect(byId().get(away!)).not.toBe(second.get(away!));
}, 30_000);
