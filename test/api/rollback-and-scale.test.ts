/**
 * The kept revisions of a service, rollback to one of them, and scale: every route and every
 * refusal, on a real store (so that what is kept survives a restart).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const TOKEN = 'tat_rollback_and_scale_test_token';

let dir: string;
let app: FastifyInstance | null = null;
let store: LowdbStore;
/** A code to fail every store file write with (ENOSPC: a full disk); null: writes succeed. */
let failWritesWith: string | null = null;

async function startHub(): Promise<void> {
  store = new LowdbStore({
    dir,
    beforeWrite: () => {
      if (failWritesWith) throw Object.assign(new Error(`${failWritesWith}: simulated`), { code: failWritesWith });
    },
  });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: TOKEN }));
}

async function restartHub(): Promise<void> {
  await app!.close();
  app = null;
  await startHub();
}

const call = (method: string, url: string, body?: unknown, raw?: { payload: string; contentType: string }) =>
  app!.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${TOKEN}`, ...(raw ? { 'content-type': raw.contentType } : {}) },
    ...(raw ? { payload: raw.payload } : body !== undefined ? { payload: body as object } : {}),
  });

interface RevisionView {
  revision: number;
  acceptedAt: string;
  current: boolean;
  spec: { image: string; replicas: number; registryAuth: { username: string; password: string } | null };
}

async function revisions(name: string): Promise<RevisionView[]> {
  const res = await call('GET', `/v1/services/${name}/revisions`);
  expect(res.statusCode).toBe(200);
  return (res.json() as { revisions: RevisionView[] }).revisions;
}

/** PUTs `web` with each image in turn, checking each one is a new revision. */
async function putImages(images: string[], extra: object = {}): Promise<void> {
  for (const image of images) {
    const res = await call('PUT', '/v1/services/web', { image, ...extra });
    expect(res.statusCode, res.body).toBeLessThan(300);
    expect(res.json().outcome).not.toBe('unchanged');
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-rollback-'));
  failWritesWith = null;
  await startHub();
});
afterEach(async () => {
  await app?.close();
  app = null;
  await rm(dir, { recursive: true, force: true });
});

it.each([
  ['GET', '/v1/services/web/revisions'],
  ['POST', '/v1/services/web/rollback'],
  ['POST', '/v1/services/web/scale'],
])('refuses %s %s without the admin token', async (method, url) => {
  await putImages(['nginx:1', 'nginx:2']);
  const res = await app!.inject({ method: method as 'GET', url, payload: { replicas: 3 } });
  expect(res.statusCode).toBe(401);
  expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 2, spec: { image: 'nginx:2', replicas: 1 } });
});

describe('GET /v1/services/:name/revisions', () => {
  it('404s an unknown service', async () => {
    const res = await call('GET', '/v1/services/nope/revisions');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('service_not_found');
  });

  it('lists the current spec alone for a new service', async () => {
    await putImages(['nginx:1']);
    const [only, ...rest] = await revisions('web');
    expect(rest).toEqual([]);
    expect(only).toMatchObject({ revision: 1, current: true, spec: { image: 'nginx:1', replicas: 1 } });
    expect(Date.parse(only!.acceptedAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('keeps exactly the last 10 of 11 changes, newest first, across a restart; an unchanged PUT adds none', async () => {
    await putImages(range(1, 11).map((n) => `nginx:${n}`));
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:11' })).json().outcome).toBe('unchanged');
    for (const pass of ['before', 'after'] as const) {
      const kept = await revisions('web');
      expect(kept.map((r) => r.revision), pass).toEqual(range(2, 11).reverse());
      expect(kept.map((r) => r.spec.image), pass).toEqual(range(2, 11).reverse().map((n) => `nginx:${n}`));
      expect(kept.map((r) => r.current), pass).toEqual([true, ...Array<boolean>(9).fill(false)]);
      // Accepted in order.
      const times = kept.map((r) => Date.parse(r.acceptedAt));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      if (pass === 'before') await restartHub();
    }
  });

  it('redacts registry passwords in every kept revision, and keeps them for the agents', async () => {
    const auth = { username: 'tether', password: 's3cret' };
    await putImages(['127.0.0.1:5001/busybox:1', '127.0.0.1:5001/busybox:2'], { registryAuth: auth });
    const res = await call('GET', '/v1/services/web/revisions');
    expect(res.body).not.toContain('s3cret');
    expect((res.json() as { revisions: RevisionView[] }).revisions.map((r) => r.spec.registryAuth)).toEqual([
      { username: 'tether', password: '(redacted)' },
      { username: 'tether', password: '(redacted)' },
    ]);
    const rolled = await call('POST', '/v1/services/web/rollback');
    expect(rolled.statusCode).toBe(200);
    expect(rolled.body).not.toContain('s3cret');
    // What the agents get still has the real password.
    expect(store.getService('web')!.spec.registryAuth).toEqual(auth);
  });
});

describe('what is kept on disk', () => {
  it('a placement pass does not write the kept revisions again', async () => {
    await putImages(range(1, 10).map((n) => `nginx:${n}`), { replicas: 0 });
    const kept = store.getService('web')!;
    expect(kept.history).toHaveLength(9);
    const historyBytes = JSON.stringify(kept.history).length;
    // A pass copies the record with new placements, as the reconcile loop does.
    const before = store.stats().bytesWritten;
    await store.putService({ ...kept, placements: [{ replicaId: 'web-1', nodeId: null, pendingReason: 'no nodes' }] });
    const written = store.stats().bytesWritten - before;
    expect(written).toBeGreaterThan(0);
    // The new placement alone is a line of a few hundred bytes; the history would be kilobytes.
    expect(historyBytes).toBeGreaterThan(2000);
    expect(written).toBeLessThan(historyBytes / 2);
  });
});

describe('POST /v1/services/:name/rollback', () => {
  it('accepts the previous spec again as a new revision, and again undoes that', async () => {
    await putImages(['nginx:1', 'nginx:2']);
    const first = await call('POST', '/v1/services/web/rollback');
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ outcome: 'rolled-back', revision: 3, rolledBackTo: 1, spec: { image: 'nginx:1' } });
    expect((await revisions('web')).map((r) => [r.revision, r.spec.image, r.current])).toEqual([
      [3, 'nginx:1', true],
      [2, 'nginx:2', false],
      [1, 'nginx:1', false],
    ]);
    // As `kubectl rollout undo`: the one before the current is now the bad one.
    const second = await call('POST', '/v1/services/web/rollback', {});
    expect(second.json()).toMatchObject({ outcome: 'rolled-back', revision: 4, rolledBackTo: 2, spec: { image: 'nginx:2' } });
    expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 4, spec: { image: 'nginx:2' } });
  });

  it('rolls back to a named revision, and answers a spec equal to the current one as a no-op', async () => {
    await putImages(['nginx:1', 'nginx:2', 'nginx:3']);
    const named = await call('POST', '/v1/services/web/rollback', { revision: 1 });
    expect(named.json()).toMatchObject({ outcome: 'rolled-back', revision: 4, rolledBackTo: 1, spec: { image: 'nginx:1' } });
    // Revision 1 holds the spec that is current again: nothing to do, no new revision.
    const same = await call('POST', '/v1/services/web/rollback', { revision: 1 });
    expect(same.statusCode).toBe(200);
    expect(same.json()).toMatchObject({ outcome: 'unchanged', revision: 4, rolledBackTo: 1 });
    const current = await call('POST', '/v1/services/web/rollback', { revision: 4 });
    expect(current.json()).toMatchObject({ outcome: 'unchanged', revision: 4, rolledBackTo: 4 });
    expect((await revisions('web')).map((r) => r.revision)).toEqual([4, 3, 2, 1]);
  });

  it('goes on from the tombstone after a delete and a re-create, with only the new life kept', async () => {
    await putImages(['nginx:1', 'nginx:2']);
    expect((await call('DELETE', '/v1/services/web')).statusCode).toBe(200);
    await putImages(['nginx:7']);
    expect((await revisions('web')).map((r) => r.revision)).toEqual([3]);
    const none = await call('POST', '/v1/services/web/rollback');
    expect(none.statusCode).toBe(409);
    expect(none.json().error).toMatchObject({ code: 'no_earlier_revision' });
    expect(none.json().error.message).toMatch(/revision 3 is the only one kept/);

    await putImages(['nginx:8']);
    const back = await call('POST', '/v1/services/web/rollback');
    expect(back.json()).toMatchObject({ outcome: 'rolled-back', revision: 5, rolledBackTo: 3, spec: { image: 'nginx:7' } });
    const gone = await call('POST', '/v1/services/web/rollback', { revision: 2 });
    expect(gone.statusCode).toBe(409);
    expect(gone.json().error).toEqual({ code: 'revision_gone', message: 'revision 2 is gone: the last 10 are kept (3-5)' });
  });

  it('refuses a revision no longer kept, or never reached, with 409 and changes nothing', async () => {
    await putImages(range(1, 14).map((n) => `nginx:${n}`));
    const gone = await call('POST', '/v1/services/web/rollback', { revision: 3 });
    expect(gone.statusCode).toBe(409);
    expect(gone.json().error).toEqual({ code: 'revision_gone', message: 'revision 3 is gone: the last 10 are kept (5-14)' });
    const future = await call('POST', '/v1/services/web/rollback', { revision: 15 });
    expect(future.statusCode).toBe(409);
    expect(future.json().error).toEqual({ code: 'revision_unknown', message: 'revision 15 does not exist: the service is at revision 14' });
    expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 14, spec: { image: 'nginx:14' } });
  });

  it('404s an unknown service', async () => {
    const res = await call('POST', '/v1/services/nope/rollback');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('service_not_found');
  });

  it.each([
    [{ revision: 'x' }, 'revision', /integer/],
    [{ revision: 0 }, 'revision', />= 1/],
    [{ revision: 1.5 }, 'revision', /integer/],
    [{ revision: 1e300 }, 'revision', /<= 9007199254740991/],
    [{ revision: 1, to: 2 }, 'to', /unknown field/],
    [[1], '', /object/],
  ])('refuses a malformed body %j with 400 naming %j', async (body, field, reason) => {
    await putImages(['nginx:1', 'nginx:2']);
    const res = await call('POST', '/v1/services/web/rollback', body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_rollback');
    expect(res.json().error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: field, message: expect.stringMatching(reason) })]));
    expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 2 });
  });

  it('refuses malformed JSON', async () => {
    await putImages(['nginx:1', 'nginx:2']);
    const res = await call('POST', '/v1/services/web/rollback', undefined, { payload: '{"revision":', contentType: 'application/json' });
    expect(res.statusCode).toBe(400);
    expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 2 });
  });
});

describe('POST /v1/services/:name/scale', () => {
  it('changes only the replica count, as a new revision; the same count is a no-op', async () => {
    await putImages(['nginx:1'], { env: { A: '1' }, replicas: 2 });
    const res = await call('POST', '/v1/services/web/scale', { replicas: 5 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ outcome: 'updated', revision: 2, spec: { image: 'nginx:1', env: { A: '1' }, replicas: 5 } });
    const same = await call('POST', '/v1/services/web/scale', { replicas: 5 });
    expect(same.json()).toMatchObject({ outcome: 'unchanged', revision: 2 });
    expect((await revisions('web')).map((r) => [r.revision, r.spec.replicas])).toEqual([
      [2, 5],
      [1, 2],
    ]);
    // Down to none is a scale too.
    expect((await call('POST', '/v1/services/web/scale', { replicas: 0 })).json()).toMatchObject({ revision: 3, spec: { replicas: 0 } });
    // A PUT keeps working as before.
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:1', env: { A: '1' }, replicas: 4 })).json()).toMatchObject({ outcome: 'updated', revision: 4 });
  });

  it('refuses a global service with 400 and changes nothing', async () => {
    await call('PUT', '/v1/services/agentd', { image: 'nginx:1', mode: 'global' });
    const res = await call('POST', '/v1/services/agentd/scale', { replicas: 3 });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'invalid_scale', message: 'replicas: scale applies to replicated services; "agentd" is global' });
    expect((await call('GET', '/v1/services/agentd')).json()).toMatchObject({ revision: 1, spec: { mode: 'global', replicas: 0 } });
  });

  it('404s an unknown service', async () => {
    const res = await call('POST', '/v1/services/nope/scale', { replicas: 1 });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('service_not_found');
  });

  it.each([
    [{ replicas: -1 }, 'replicas', />= 0/],
    [{ replicas: 100_001 }, 'replicas', /<= 100000/],
    [{ replicas: '2' }, 'replicas', /integer/],
    [{ replicas: 2.5 }, 'replicas', /integer/],
    [{}, 'replicas', /required/],
    [{ replicas: 2, image: 'nginx:9' }, 'image', /unknown field/],
    [undefined, '', /object/],
  ])('refuses %j with 400 naming %j', async (body, field, reason) => {
    await putImages(['nginx:1']);
    const res = await call('POST', '/v1/services/web/scale', body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_scale');
    expect(res.json().error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: field, message: expect.stringMatching(reason) })]));
    expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 1, spec: { replicas: 1 } });
  });
});

describe('writes of one service', () => {
  it('keep nothing of a rollback or a scale the store cannot write, across a restart', async () => {
    await putImages(['nginx:1', 'nginx:2']);
    failWritesWith = 'ENOSPC';
    expect((await call('POST', '/v1/services/web/rollback')).statusCode).toBe(507);
    expect((await call('POST', '/v1/services/web/scale', { replicas: 4 })).statusCode).toBe(507);
    for (const pass of ['before', 'after'] as const) {
      expect((await revisions('web')).map((r) => [r.revision, r.spec.image, r.spec.replicas]), pass).toEqual([
        [2, 'nginx:2', 1],
        [1, 'nginx:1', 1],
      ]);
      if (pass === 'before') {
        failWritesWith = null;
        await restartHub();
      }
    }
    // Retried, each is a change again.
    expect((await call('POST', '/v1/services/web/rollback')).json()).toMatchObject({ outcome: 'rolled-back', revision: 3, rolledBackTo: 1 });
    expect((await call('POST', '/v1/services/web/scale', { replicas: 4 })).json()).toMatchObject({ outcome: 'updated', revision: 4 });
  });

  it('run one at a time: a PUT, a scale and a rollback at once each build on the one before', async () => {
    await putImages(['nginx:1', 'nginx:2']);
    const [put, scale, rollback] = await Promise.all([
      call('PUT', '/v1/services/web', { image: 'nginx:3' }),
      call('POST', '/v1/services/web/scale', { replicas: 7 }),
      call('POST', '/v1/services/web/rollback', { revision: 1 }),
    ]);
    expect([put, scale, rollback].map((r) => r.statusCode)).toEqual([200, 200, 200]);
    // Whatever order they came in, each is a revision of its own, and each is kept as it answered.
    expect([put, scale, rollback].map((r) => r.json().revision as number).sort()).toEqual([3, 4, 5]);
    const kept = await revisions('web');
    expect(kept.map((r) => r.revision)).toEqual([5, 4, 3, 2, 1]);
    for (const r of [put, scale, rollback]) expect(kept.find((k) => k.revision === r.json().revision)!.spec).toEqual(r.json().spec);
    // The scale kept the image of whichever spec it came after: it changes the count alone.
    const scaled = kept.find((k) => k.revision === scale.json().revision)!;
    const before = kept.find((k) => k.revision === scaled.revision - 1)!;
    expect(scaled.spec).toEqual({ ...before.spec, replicas: 7 });
  });
});
