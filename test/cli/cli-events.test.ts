import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_EVENT_STREAM_LIMITS } from '../../hub/events/event-streams.js';
import { startTether, tether, until } from './cli-harness.js';
import { ADMIN, cliHub, cliHubPerTest, type CliHub } from './cli-hub.js';

const IMAGE = '127.0.0.1:5000/busybox:1';

const t = cliHubPerTest();

const where = () => ({ homeDir: t.home.dir, env: { TETHER_HUB: t.hub.url, TETHER_TOKEN: ADMIN } });

describe('tether events', () => {
  it('without -f: a table of the newest events; --json gives the answer', async () => {
    await t.hub.call('PUT', '/v1/services/web', { image: IMAGE });
    const { code, stdout } = await tether(['events'], where());
    expect(code).toBe(0);
    expect(stdout).toMatch(/^SEQ\s+TIME\s+TYPE\s+SERVICE\s+REPLICA\s+NODE\s+MESSAGE\n/);
    expect(stdout).toMatch(/\n\d+\s+\S+Z\s+service\.created\s+web\s/);
    const json = JSON.parse((await tether(['events', '--json'], where())).stdout) as { events: Array<{ type: string; service?: string }> };
    expect(json.events).toContainEqual(expect.objectContaining({ type: 'service.created', service: 'web' }));
  });

  it('-f prints the history after --since, then events as they happen, until interrupted (exit 0)', async () => {
    await t.hub.call('PUT', '/v1/services/web', { image: IMAGE });
    const { events } = (await t.hub.call('GET', '/v1/events')).body as { events: Array<{ seq: number }> };
    const since = String(events[0]!.seq - 1);
    const followed = startTether(['events', '-f', '--since', since], where());
    await followed.waitForOutput('service.created  service=web');
    await t.hub.call('PUT', '/v1/services/api', { image: IMAGE });
    await followed.waitForOutput('service.created  service=api');
    followed.stop();
    const { code, stderr } = await followed.done;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(t.hub.requests.filter((r) => r.url.startsWith('/v1/events?since')).map((r) => r.url)).toEqual([`/v1/events?since=${since}`]);
  });

  it('-f --json prints one JSON event per line', async () => {
    const followed = startTether(['events', '-f', '--json'], where());
    // Without --since only new events come: wait for the stream before making one.
    await waitForStream(t.hub);
    await t.hub.call('PUT', '/v1/services/web', { image: IMAGE });
    await followed.waitForOutput('"service":"web"');
    followed.stop();
    expect((await followed.done).code).toBe(0);
    const first = JSON.parse(followed.stdout.split('\n')[0]!) as { seq: number; type: string };
    expect(first).toMatchObject({ seq: expect.any(Number), type: 'service.created' });
  });
});

describe('tether events -f when the hub ends the stream', () => {
  let renewing: CliHub;
  beforeEach(async () => {
    // Streams end after 1.5 s (the hub's is 30 minutes), at the next keep-alive.
    renewing = await cliHub({ config: { eventStreams: { ...DEFAULT_EVENT_STREAM_LIMITS, keepAliveMs: 100, maxStreamMs: 1500 } } });
  });
  afterEach(async () => renewing.close());

  it('resumes with Last-Event-ID, quietly, and prints no event twice', async () => {
    await renewing.call('PUT', '/v1/services/web', { image: IMAGE });
    const { events } = (await renewing.call('GET', '/v1/events')).body as { events: Array<{ seq: number }> };
    const since = events[0]!.seq - 1;
    const followed = startTether(['events', '-f', '--since', String(since)], { homeDir: t.home.dir, env: { TETHER_HUB: renewing.url, TETHER_TOKEN: ADMIN } });
    await followed.waitForOutput('service=web');
    const lastSeq = ((await renewing.call('GET', '/v1/events')).body as { latestSeq: number }).latestSeq;
    await until(async () => renewing.requests.filter((r) => r.url.startsWith('/v1/events') && r.lastEventId !== undefined).length > 0);
    await renewing.call('PUT', '/v1/services/api', { image: IMAGE });
    await followed.waitForOutput('service=api');
    followed.stop();
    const { code, stdout, stderr } = await followed.done;
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout.match(/service\.created {2}service=web/g)).toHaveLength(1);
    const resumed = renewing.requests.find((r) => r.lastEventId !== undefined)!;
    expect(resumed).toMatchObject({ url: '/v1/events', lastEventId: String(lastSeq) });
  });
});

/** The hub has the CLI's stream request (it answers with the headers at once, then events). */
async function waitForStream(h: CliHub): Promise<void> {
  while (!h.requests.some((r) => r.url.startsWith('/v1/events'))) await new Promise((resolve) => setTimeout(resolve, 10));
  // The request is seen before its handler subscribes; a round trip after it makes sure it has.
  await h.call('GET', '/v1/events?limit=1');
}
