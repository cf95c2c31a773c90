/**
 * GET /v1/events: the fleet's events as Server-Sent Events and as JSON, against the real hub in
 * this process on a loopback port with agents on simulated runtimes (sim-fleet.ts), read by a
 * real SSE client over real sockets.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { DEFAULT_EVENT_STREAM_LIMITS, type EventStreamLimits } from '../../hub/events/event-streams.js';
import type { FleetEvent } from '../../hub/events/fleet-events.js';
import type { HubConfig } from '../../hub/hub.js';
import { openEventStream, type EventStreamClient } from '../helpers/event-stream-client.js';
import { ADMIN_TOKEN, SimFleet } from '../helpers/sim-fleet.js';

const FAST: Partial<HubConfig> = { heartbeatIntervalMs: 200, heartbeatGraceMs: 800, lostAfterMs: 1500, startupGraceMs: 1000 };
const spec = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };
const BROKEN = 'tether-test/broken:1';
const WAIT = { timeout: 15_000, interval: 20 };

let fleet: SimFleet | null = null;
const clients: EventStreamClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await fleet?.close();
  fleet = null;
});

async function start(config: Partial<HubConfig> = {}, limits: Partial<EventStreamLimits> = {}): Promise<SimFleet> {
  fleet = await SimFleet.start({ ...FAST, ...config, eventStreams: { ...DEFAULT_EVENT_STREAM_LIMITS, ...limits } });
  return fleet;
}

async function open(opts: { path?: string; lastEventId?: string; token?: string } = {}): Promise<EventStreamClient> {
  const client = await openEventStream(fleet!.url, { token: opts.token ?? ADMIN_TOKEN, ...opts });
  clients.push(client);
  return client;
}

/** The fleet events a stream received (not reset, overflow or comments). */
const eventsOf = (client: EventStreamClient): FleetEvent[] => client.messages.filter((m) => m.event !== 'reset' && m.event !== 'overflow').map((m) => JSON.parse(m.data) as FleetEvent);

const seqs = (events: readonly FleetEvent[]) => events.map((e) => e.seq);

/** Consecutive numbers, each one more than the one before. */
function expectConsecutive(events: readonly FleetEvent[]): void {
  const s = seqs(events);
  expect(s).toEqual(s.map((_, i) => s[0]! + i));
}

function publishMany(count: number, message = 'x'): void {
  for (let i = 0; i < count; i++) fleet!.hub.events.publish({ type: 'service.updated', service: 'storm', message });
}

describe('GET /v1/events as Server-Sent Events', () => {
  it('tells every kind of change, each numbered one more than the one before, with id and event as SSE says', async () => {
    await start();
    const stream = await open();
    expect(stream.status).toBe(200);
    // Every agent's engine refuses to start the broken image.
    const runtime = new SimulatedRuntime({ startFails: (image) => (image === BROKEN ? 'exec: "/bin/httpd": not found' : null) });
    const a = await fleet!.addAgent({ name: 'edge-a', runtime });
    const b = await fleet!.addAgent({ name: 'edge-b', runtime });
    expect((await fleet!.api('PUT', '/v1/services/web', { ...spec, replicas: 2 })).status).toBe(201);
    await vi.waitFor(() => expect(eventsOf(stream).filter((e) => e.type === 'replica.started')).toHaveLength(2), WAIT);
    expect((await fleet!.api('PUT', '/v1/services/web', { ...spec, replicas: 2, env: { V: '2' } })).status).toBe(200);
    expect((await fleet!.api('PUT', '/v1/services/broken', { ...spec, image: BROKEN, replicas: 1 })).status).toBe(201);
    await vi.waitFor(() => expect(eventsOf(stream).map((e) => e.type)).toContain('replica.failed'), WAIT);

    // edge-b goes away for good: unreachable, lost, its replicas move to edge-a, then it is removed.
    const onB = (await fleet!.api('GET', '/v1/services/web')).body.status.replicas.filter((r: { nodeId: string }) => r.nodeId === b.nodeId);
    expect(onB.length).toBeGreaterThan(0);
    await fleet!.stopAgent(b);
    await vi.waitFor(() => expect(eventsOf(stream).map((e) => e.type)).toContain('replica.moved'), WAIT);
    expect((await fleet!.api('DELETE', `/v1/nodes/${b.nodeId}`)).status).toBe(200);
    expect((await fleet!.api('DELETE', '/v1/services/broken')).status).toBe(200);
    await vi.waitFor(() => expect(eventsOf(stream).map((e) => e.type)).toContain('service.deleted'), WAIT);

    const events = eventsOf(stream);
    expectConsecutive(events);
    // Each SSE message's id is its event's seq, and its event name the event's type.
    for (const m of stream.messages) expect([m.id, m.event]).toEqual([String(JSON.parse(m.data).seq), JSON.parse(m.data).type]);
    const types = new Set(events.map((e) => e.type));
    expect([...types].sort()).toEqual(
      [
        'node.joined',
        'node.ready',
        'node.unreachable',
        'node.lost',
        'node.removed',
        'service.created',
        'service.updated',
        'service.deleted',
        'replica.placed',
        'replica.started',
        'replica.failed',
        'replica.moved',
      ].sort(),
    );
    const find = (type: string, extra: Partial<FleetEvent> = {}) => events.find((e) => e.type === type && Object.entries(extra).every(([k, v]) => e[k as keyof FleetEvent] === v));
    expect(find('node.joined', { node: a.nodeId })).toMatchObject({ nodeName: 'edge-a' });
    expect(find('node.lost', { node: b.nodeId })).toMatchObject({ nodeName: 'edge-b' });
    expect(find('node.removed', { node: b.nodeId })).toMatchObject({ nodeName: 'edge-b' });
    expect(find('service.created', { service: 'web' })).toMatchObject({ message: 'revision 1' });
    expect(find('service.updated', { service: 'web' })).toMatchObject({ message: 'revision 1 -> 2' });
    expect(find('replica.failed', { service: 'broken' })!.message).toMatch(/not found/);
    const moved = events.filter((e) => e.type === 'replica.moved' && e.service === 'web');
    expect(moved.map((m) => m.replica)).toHaveLength(onB.length);
    for (const m of moved) expect(m).toMatchObject({ node: a.nodeId, nodeName: 'edge-a', message: `from node edge-b (${b.nodeId}): replaces its replica there` });
    // The order a watcher relies on: a node joins before it is ready, is lost before its replicas move.
    const seqOf = (e: FleetEvent | undefined) => e?.seq ?? Number.NaN;
    expect(seqOf(find('node.joined', { node: b.nodeId }))).toBeLessThan(seqOf(find('node.ready', { node: b.nodeId })));
    expect(seqOf(find('node.unreachable', { node: b.nodeId }))).toBeLessThan(seqOf(find('node.lost', { node: b.nodeId })));
    expect(seqOf(find('node.lost', { node: b.nodeId }))).toBeLessThan(seqOf(moved[0]));
    // Nothing of the removed node after its removal (its connection was already gone).
    const removedSeq = seqOf(find('node.removed'));
    expect(events.filter((e) => e.node === b.nodeId && e.seq > removedSeq)).toEqual([]);
  });

  it('tells heartbeats and an agent reconnecting with the same replicas as nothing', async () => {
    await start();
    const agent = await fleet!.addAgent({ name: 'edge-a' });
    await fleet!.api('PUT', '/v1/services/web', { ...spec, replicas: 1 });
    await vi.waitFor(async () => expect((await fleet!.api('GET', '/v1/services/web')).body.status.running).toBe(1), WAIT);
    const stream = await open();
    // Heartbeats every 200 ms: a few of them.
    const beats = fleet!.hub.detector.liveness(agent.nodeId)!.lastSeenMs!;
    await vi.waitFor(() => expect(fleet!.hub.detector.liveness(agent.nodeId)!.lastSeenMs!).toBeGreaterThan(beats + 600), WAIT);
    expect(eventsOf(stream)).toEqual([]);
    // A reconnect: ready again (it was unreachable for a moment), but its running replica did not start again.
    fleet!.hub.gateway.disconnect(agent.nodeId, 4000, 'test');
    await vi.waitFor(() => expect(eventsOf(stream).map((e) => e.type)).toEqual(['node.unreachable', 'node.ready']), WAIT);
  });

  it('tells a node whose engine stops answering as not ready, and ready again when it answers', async () => {
    await start();
    const runtime = new SimulatedRuntime();
    const agent = await fleet!.addAgent({ name: 'edge-a', runtime });
    const stream = await open();
    runtime.setEngineAvailable(false);
    await vi.waitFor(() => expect(eventsOf(stream).map((e) => e.type)).toContain('node.not_ready'), WAIT);
    expect(eventsOf(stream).find((e) => e.type === 'node.not_ready')).toMatchObject({ node: agent.nodeId, nodeName: 'edge-a' });
    runtime.setEngineAvailable(true);
    await vi.waitFor(() => expect(eventsOf(stream).map((e) => e.type).at(-1)).toBe('node.ready'), WAIT);
  });

  it('tells a restarted hub\'s nodes ready again, and not every replica they already run as started', async () => {
    await start();
    const agent = await fleet!.addAgent({ name: 'edge-a' });
    await fleet!.api('PUT', '/v1/services/web', { ...spec, replicas: 3 });
    await vi.waitFor(async () => expect((await fleet!.api('GET', '/v1/services/web')).body.status.running).toBe(3), WAIT);
    await fleet!.stopHub();
    await fleet!.startHub(FAST);
    await vi.waitFor(async () => expect((await fleet!.api('GET', '/v1/events?since=0')).body.events.map((e: FleetEvent) => e.type)).toContain('node.ready'), WAIT);
    await vi.waitFor(async () => expect((await fleet!.api('GET', '/v1/services/web')).body.status.running).toBe(3), WAIT);
    const after = (await fleet!.api('GET', '/v1/events?since=0')).body.events as FleetEvent[];
    expect(after.map((e) => [e.type, e.node])).toEqual([['node.ready', agent.nodeId]]);
  });

  it('resumes after Last-Event-ID with exactly the events missed, then goes on live', async () => {
    await start();
    const steady = await open();
    const first = await open();
    await fleet!.api('PUT', '/v1/services/one', { ...spec, replicas: 0 });
    await vi.waitFor(() => expect(eventsOf(first)).toHaveLength(1), WAIT);
    const lastSeen = eventsOf(first)[0]!.seq;
    first.close();
    for (const name of ['two', 'three', 'four']) await fleet!.api('PUT', `/v1/services/${name}`, { ...spec, replicas: 0 });
    await vi.waitFor(() => expect(eventsOf(steady)).toHaveLength(4), WAIT);

    const resumed = await open({ lastEventId: String(lastSeen) });
    await vi.waitFor(() => expect(eventsOf(resumed)).toHaveLength(3), WAIT);
    expect(eventsOf(resumed)).toEqual(eventsOf(steady).slice(1));
    expect(resumed.messages.map((m) => m.event)).not.toContain('reset');
    // Then live, as any stream.
    await fleet!.api('DELETE', '/v1/services/two');
    await vi.waitFor(() => expect(eventsOf(resumed).map((e) => e.type)).toEqual(['service.created', 'service.created', 'service.created', 'service.deleted']), WAIT);
    // ?since= does the same when no Last-Event-ID is sent; Last-Event-ID wins over it (a reconnecting EventSource keeps its URL).
    const bySince = await open({ path: `/v1/events?since=${lastSeen}` });
    const byHeader = await open({ path: '/v1/events?since=0', lastEventId: String(lastSeen + 2) });
    await vi.waitFor(() => expect(eventsOf(bySince)).toHaveLength(4), WAIT);
    await vi.waitFor(() => expect(eventsOf(byHeader)).toHaveLength(2), WAIT);
    expect(eventsOf(bySince)).toEqual(eventsOf(steady).slice(1));
    expect(eventsOf(byHeader)).toEqual(eventsOf(steady).slice(3));
  });

  it('starts with reset and everything held when the seq asked for is older than the history, or from an earlier run', async () => {
    await start();
    const { events } = fleet!.hub;
    publishMany(10);
    const early = events.latestSeq - 9;
    publishMany(events.capacity);
    expect(events.oldestSeq).toBeGreaterThan(early + 1);

    const stream = await open({ lastEventId: String(early) });
    await vi.waitFor(() => expect(stream.messages).toHaveLength(events.capacity + 1), WAIT);
    expect(stream.messages[0]).toMatchObject({ event: 'reset', id: null });
    expect(JSON.parse(stream.messages[0]!.data)).toEqual({ oldestSeq: events.oldestSeq });
    const got = eventsOf(stream);
    expect(got[0]!.seq).toBe(events.oldestSeq);
    expect(got.at(-1)!.seq).toBe(events.latestSeq);
    expectConsecutive(got);

    // Seq numbers start from the hub's start time: an id kept from before a restart is older than all of them.
    const fromBefore = await open({ lastEventId: '41' });
    await vi.waitFor(() => expect(fromBefore.messages.length).toBeGreaterThan(0), WAIT);
    expect(fromBefore.messages[0]!.event).toBe('reset');
    // And one above the newest (made up, or from a hub whose clock ran ahead) as well.
    const fromAhead = await open({ lastEventId: String(events.latestSeq + 5) });
    await vi.waitFor(() => expect(fromAhead.messages.length).toBeGreaterThan(0), WAIT);
    expect(fromAhead.messages[0]!.event).toBe('reset');
  });

  it('cuts a client that stops reading with a final overflow event, holding no more than one write for it, and it resumes from there', async () => {
    const maxLagEvents = 300;
    await start({}, { maxLagEvents });
    const streams = fleet!.hub.eventStreams;
    const slow = await open();
    const fast = await open();
    await vi.waitFor(() => expect(streams.stats().clients).toBe(2), WAIT);
    slow.pause();
    // Events of about 1 KB, a batch per turn of the event loop, until the slow client's socket is
    // full and it falls behind (the kernel's buffers take a few MB first).
    const message = 'm'.repeat(1000);
    for (let batch = 0; streams.stats().overflows === 0; batch++) {
      expect(batch, 'the slow client was never cut').toBeLessThan(2_000);
      publishMany(100, message);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 1));
    }
    // The hub's memory for the slow client stayed bounded: its socket buffer held at most one
    // write past the high-water mark, and it was never served further behind than the lag allowed
    // plus what arrives in one turn.
    const oneEventBytes = 1200;
    expect(streams.stats().peakBufferedBytes).toBeLessThanOrEqual(16 * 1024 + DEFAULT_EVENT_STREAM_LIMITS.maxWriteBytes + oneEventBytes);
    expect(streams.stats().overflows).toBe(1);
    // The fast client kept up and is still served.
    await vi.waitFor(() => expect(eventsOf(fast).at(-1)?.seq).toBe(fleet!.hub.events.latestSeq), WAIT);
    expect(fast.ended).toBe(false);

    slow.resume();
    await vi.waitFor(() => expect(slow.ended).toBe(true), WAIT);
    const last = slow.messages.at(-1)!;
    expect(last.event).toBe('overflow');
    const { lastSeq, latestSeq } = JSON.parse(last.data) as { lastSeq: number; latestSeq: number };
    const got = eventsOf(slow);
    expectConsecutive(got);
    expect(got.at(-1)!.seq).toBe(lastSeq);
    expect(latestSeq - lastSeq).toBeGreaterThan(maxLagEvents);
    await vi.waitFor(() => expect(streams.stats().clients).toBe(1), WAIT);

    // It resumes where it was cut, from the history, without a gap.
    const again = await open({ lastEventId: String(lastSeq) });
    await vi.waitFor(() => expect(eventsOf(again).at(-1)?.seq).toBe(fleet!.hub.events.latestSeq), WAIT);
    expect(again.messages[0]!.event).not.toBe('reset');
    expect(eventsOf(again)[0]!.seq).toBe(lastSeq + 1);
  });

  it('does not cut a client still reading the history it asked for, however far behind it starts', async () => {
    const maxLagEvents = 500;
    await start({}, { maxLagEvents });
    const { events, eventStreams: streams } = fleet!.hub;
    // A full history of events of about 3 KB: some 30 MB, far more than the socket takes at once.
    publishMany(events.capacity, 'm'.repeat(3000));
    const reader = await open({ lastEventId: String(events.oldestSeq - 1) });
    reader.pause();
    await vi.waitFor(() => expect(streams.stats().clients).toBe(1), WAIT);
    // Its socket is full and it is further behind than maxLagEvents; new events come.
    for (let i = 0; i < 10; i++) {
      publishMany(1);
      await new Promise((r) => setImmediate(r));
    }
    reader.resume();
    await vi.waitFor(() => expect(eventsOf(reader).at(-1)?.seq).toBe(events.latestSeq), WAIT);
    expect(streams.stats().overflows).toBe(0);
    expect(eventsOf(reader)).toHaveLength(events.capacity + 10);
    expectConsecutive(eventsOf(reader));
  });

  it('refuses streams past the limit with 429, and takes one again once a stream closes', async () => {
    await start({}, { maxClients: 2 });
    const one = await open();
    await open();
    const third = await open();
    expect(third.status).toBe(429);
    await vi.waitFor(() => expect(third.ended).toBe(true), WAIT);
    expect(third.body).toMatchObject({ error: { code: 'too_many_event_streams', message: expect.stringContaining('at most 2 event streams') } });
    // JSON polling is not a stream, and is not limited.
    expect((await fleet!.api('GET', '/v1/events')).status).toBe(200);
    one.close();
    await vi.waitFor(() => expect(fleet!.hub.eventStreams.stats().clients).toBe(1), WAIT);
    expect((await open()).status).toBe(200);
  });

  it('sends a keep-alive comment on a quiet stream', async () => {
    await start({}, { keepAliveMs: 50 });
    const stream = await open();
    await vi.waitFor(() => expect(stream.comments).toContain('keep-alive'), WAIT);
    expect(stream.messages).toEqual([]);
  });

  it('is for viewers too, and for no one without a token', async () => {
    await start();
    const made = await fleet!.api('POST', '/v1/api-tokens', { role: 'viewer', name: 'wall' });
    const viewer = await open({ token: made.body.token });
    expect(viewer.status).toBe(200);
    const nobody = await open({ token: 'nope' });
    expect(nobody.status).toBe(401);
  });

  it('ends a stream after maxStreamMs, so that a reconnecting client shows its token again: a revoked one is refused', async () => {
    await start({}, { keepAliveMs: 20, maxStreamMs: 200 });
    const made = await fleet!.api('POST', '/v1/api-tokens', { role: 'viewer', name: 'wall' });
    const stream = await open({ token: made.body.token });
    expect(stream.status).toBe(200);
    expect((await fleet!.api('DELETE', `/v1/api-tokens/${made.body.id}`)).status).toBe(200);
    await vi.waitFor(() => expect(stream.ended).toBe(true), WAIT);
    expect(fleet!.hub.eventStreams.stats().overflows).toBe(0);
    const again = await open({ token: made.body.token });
    expect(again.status).toBe(401);
  });

  it('ends open streams when the hub closes', async () => {
    await start();
    const stream = await open();
    await fleet!.app.close();
    await vi.waitFor(() => expect(stream.ended).toBe(true), WAIT);
  });
});

describe('GET /v1/events as JSON', () => {
  it('pages the history after ?since=, oldest first, at most ?limit=; the newest without since', async () => {
    await start();
    const { events } = fleet!.hub;
    for (const name of ['a', 'b', 'c', 'd', 'e']) await fleet!.api('PUT', `/v1/services/${name}`, { ...spec, replicas: 0 });
    await vi.waitFor(() => expect(events.latestSeq - events.oldestSeq).toBe(4), WAIT);
    const all = (await fleet!.api('GET', '/v1/events')).body;
    expect(all.events.map((e: FleetEvent) => e.service)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(all.latestSeq).toBe(events.latestSeq);
    expect(all.events[0]).toMatchObject({ type: 'service.created', service: 'a', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });

    const page = (await fleet!.api('GET', `/v1/events?since=${all.events[1].seq}&limit=2`)).body;
    expect(page.events.map((e: FleetEvent) => e.service)).toEqual(['c', 'd']);
    const rest = (await fleet!.api('GET', `/v1/events?since=${page.events[1].seq}&limit=2`)).body;
    expect(rest.events.map((e: FleetEvent) => e.service)).toEqual(['e']);
    const none = (await fleet!.api('GET', `/v1/events?since=${all.latestSeq}`)).body;
    expect(none).toEqual({ events: [], latestSeq: all.latestSeq, oldestSeq: all.events[0].seq });
    expect((await fleet!.api('GET', '/v1/events?limit=2')).body.events.map((e: FleetEvent) => e.service)).toEqual(['d', 'e']);
    // A since older than the history: what it holds, from the oldest (oldestSeq tells the gap).
    expect((await fleet!.api('GET', '/v1/events?since=0&limit=1')).body.events.map((e: FleetEvent) => e.service)).toEqual(['a']);
  });

  it.each([
    ['since=-1', 'since'],
    ['since=abc', 'since'],
    ['since=1.5', 'since'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
  ])('refuses ?%s naming the field', async (query, field) => {
    await start();
    const res = await fleet!.api('GET', `/v1/events?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_query', details: [{ path: field }] });
  });

  it('refuses a Last-Event-ID that is not a seq, naming the header', async () => {
    await start();
    const stream = await open({ lastEventId: 'yesterday' });
    expect(stream.status).toBe(400);
    await vi.waitFor(() => expect(stream.ended).toBe(true), WAIT);
    expect(stream.body).toMatchObject({ error: { code: 'invalid_query', details: [{ path: 'Last-Event-ID' }] } });
  });
});
