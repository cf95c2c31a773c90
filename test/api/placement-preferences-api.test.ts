/**
 * strategy, spreadBy and the `in` / `not in` constraints through the HTTP API: accepted and shown
 * in the spec, refused with a 400 naming the field, and followed by placement on simulated agents.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
beforeAll(async () => {
  fleet = await SimFleet.start();
});
afterAll(async () => {
  await fleet.close();
});

const image = 'tether-test/busybox:1';

describe('placement fields through the API', () => {
  it.each([
    [{ strategy: 'densest' }, 'strategy', /./],
    [{ spreadBy: 'zone' }, 'spreadBy', /node\.labels\.<key>/],
    [{ spreadBy: 'node.arch' }, 'spreadBy', /node\.labels\.<key>/],
    [{ constraints: ['node.os == linux', 'node.labels.zone in (eu-1, eu-2'] }, 'constraints[1]', /unclosed parenthesis/],
    [{ constraints: ['node.labels.zone in ()'] }, 'constraints[0]', /empty list/],
    [{ constraints: ['node.arch not in (arm, , arm64)'] }, 'constraints[0]', /empty item 2/],
    [{ constraints: ['node.arch in arm'] }, 'constraints[0]', /expected a list in parentheses after "in"/],
  ])('refuses %j with 400 naming %s, and stores nothing', async (fields, path, reason) => {
    const res = await fleet.api('PUT', '/v1/services/bad', { image, ...fields });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_spec');
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(reason) })]));
    expect((await fleet.api('GET', '/v1/services/bad')).status).toBe(404);
  });

  it('accepts each field, shows it in the spec, and places by it', async () => {
    for (const [name, zone] of [['eu-a', 'eu-1'], ['eu-b', 'eu-1'], ['eu-c', 'eu-2'], ['us-a', 'us-1']] as const) {
      await fleet.addAgent({ name, labels: { zone } });
    }
    const nodeNames = new Map<string, string>(
      (await fleet.api<{ nodes: Array<{ id: string; name: string }> }>('GET', '/v1/nodes')).body.nodes.map((n) => [n.id, n.name]),
    );

    const put = await fleet.api('PUT', '/v1/services/web', {
      image,
      replicas: 4,
      strategy: 'binpack',
      spreadBy: 'node.labels.zone',
      constraints: ['node.labels.zone in (eu-1, eu-2, us-1)', 'node.name not in (us-a)'],
    });
    expect(put.status).toBe(201);
    expect(put.body.spec).toMatchObject({
      strategy: 'binpack',
      spreadBy: 'zone',
      constraints: ['node.labels.zone in (eu-1, eu-2, us-1)', 'node.name not in (us-a)'],
    });
    // Left out, both are absent: spread, and no label to spread over.
    const plain = await fleet.api('PUT', '/v1/services/plain', { image, replicas: 0 });
    expect(plain.status).toBe(201);
    expect('strategy' in plain.body.spec || 'spreadBy' in plain.body.spec).toBe(false);

    // us-a is ruled out; eu-1 and eu-2 share the replicas evenly (spreadBy), and within eu-1 they
    // are packed onto one of its two nodes (binpack).
    const replicas = await vi.waitFor(
      async () => {
        const view = (await fleet.api('GET', '/v1/services/web')).body;
        expect(view.status.running).toBe(4);
        return view.status.replicas as Array<{ nodeId: string }>;
      },
      { timeout: 10_000, interval: 25 },
    );
    const perNode: Record<string, number> = {};
    for (const r of replicas) {
      const name = nodeNames.get(r.nodeId) as string;
      perNode[name] = (perNode[name] ?? 0) + 1;
    }
    expect(perNode['eu-c']).toBe(2);
    expect([perNode['eu-a'], perNode['eu-b']].sort()).toEqual([2, undefined]);
  });
});
