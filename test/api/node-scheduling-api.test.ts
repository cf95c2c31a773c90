/**
 * Cordon, drain and uncordon, and an operator's labels: the routes, their refusals, what the node
 * view shows, and that the hold survives a hub restart (a real store).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const TOKEN = 'tat_node_scheduling_test_token';

let dir: string;
let app: FastifyInstance | null = null;

async function startHub(): Promise<void> {
  const store = new LowdbStore({ dir });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: TOKEN }));
}

const call = (method: string, url: string, body?: unknown) =>
  app!.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${TOKEN}` },
    ...(body !== undefined ? { payload: body as object } : {}),
  });

interface NodeView {
  id: string;
  labels: Record<string, string>;
  scheduling: string;
  drain: { replicasLeft: number } | null;
}

/** A node joined with a token that gives it `tokenLabels`, the device asking for `labels`. */
async function join(name: string, labels: Record<string, string> = {}, tokenLabels: Record<string, string> = {}): Promise<string> {
  const token = (await call('POST', '/v1/join-tokens', { ttlSeconds: 120, labels: tokenLabels })).json().token as string;
  const joined = await call('POST', '/v1/join', { joinToken: token, name, labels });
  expect(joined.statusCode).toBe(201);
  return joined.json().nodeId as string;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-node-scheduling-'));
  await startHub();
});

afterEach(async () => {
  await app?.close();
  app = null;
  await rm(dir, { recursive: true, force: true });
});

describe('cordon, drain, uncordon', () => {
  it('moves a node through the states, shows them, and keeps them across a restart', async () => {
    const id = await join('dev-1');
    expect((await call('GET', `/v1/nodes/${id}`)).json()).toMatchObject({ scheduling: 'active', drain: null });

    const cordoned = await call('POST', `/v1/nodes/${id}/cordon`);
    expect(cordoned.statusCode).toBe(200);
    expect(cordoned.json()).toMatchObject({ id, scheduling: 'cordoned', drain: null });

    const drained = await call('POST', `/v1/nodes/${id}/drain`);
    expect(drained.statusCode).toBe(200);
    expect(drained.json()).toMatchObject({ scheduling: 'draining', drain: { replicasLeft: 0 } });

    await app!.close();
    app = null;
    await startHub();
    const listed = (await call('GET', '/v1/nodes')).json().nodes as NodeView[];
    expect(listed.find((n) => n.id === id)).toMatchObject({ scheduling: 'draining', drain: { replicasLeft: 0 } });

    const active = await call('POST', `/v1/nodes/${id}/uncordon`);
    expect(active.statusCode).toBe(200);
    expect(active.json()).toMatchObject({ scheduling: 'active', drain: null });
  });

  it('answers 200 and changes nothing for a node already in that state', async () => {
    const id = await join('dev-1');
    for (const action of ['uncordon', 'cordon', 'cordon', 'drain', 'drain']) {
      const res = await call('POST', `/v1/nodes/${id}/${action}`);
      expect(res.statusCode, action).toBe(200);
    }
    expect((await call('GET', `/v1/nodes/${id}`)).json().scheduling).toBe('draining');
  });

  it('404s an unknown node, naming it', async () => {
    for (const action of ['cordon', 'drain', 'uncordon']) {
      const res = await call('POST', `/v1/nodes/no-such-node/${action}`);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('node_not_found');
      expect(res.json().error.message).toContain('no-such-node');
    }
  });

  it('400s a body with fields, naming them', async () => {
    const id = await join('dev-1');
    const res = await call('POST', `/v1/nodes/${id}/drain`, { force: true });
    expect(res.statusCode).toBe(400);
    expect(JSON.stringify(res.json())).toContain('force');
    expect((await call('GET', `/v1/nodes/${id}`)).json().scheduling).toBe('active');
    expect((await call('POST', `/v1/nodes/${id}/drain`, {})).statusCode).toBe(200);
  });
});

describe('PATCH /v1/nodes/:id labels', () => {
  it('replaces the operator labels; a join token label stays', async () => {
    const id = await join('dev-1', { zone: 'a', rack: '1' }, { site: 'berlin' });
    expect((await call('GET', `/v1/nodes/${id}`)).json().labels).toEqual({ zone: 'a', rack: '1', site: 'berlin' });
    const res = await call('PATCH', `/v1/nodes/${id}`, { labels: { zone: 'b' } });
    expect(res.statusCode).toBe(200);
    expect(res.json().labels).toEqual({ zone: 'b', site: 'berlin' });
  });

  it('400s a label a join token set, naming it, and stores nothing', async () => {
    const id = await join('dev-1', { zone: 'a' }, { site: 'berlin' });
    const res = await call('PATCH', `/v1/nodes/${id}`, { labels: { zone: 'b', site: 'paris' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual([expect.objectContaining({ path: 'labels.site' })]);
    expect((await call('GET', `/v1/nodes/${id}`)).json().labels).toEqual({ zone: 'a', site: 'berlin' });
  });

  it('400s a bad label, naming labels.<key>', async () => {
    const id = await join('dev-1');
    const res = await call('PATCH', `/v1/nodes/${id}`, { labels: { zone: 'x'.repeat(2000) } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual([expect.objectContaining({ path: 'labels.zone' })]);
    const notText = await call('PATCH', `/v1/nodes/${id}`, { labels: { zone: 5 } });
    expect(notText.statusCode).toBe(400);
    expect(notText.json().error.details).toEqual([expect.objectContaining({ path: 'labels.zone' })]);
  });
});
