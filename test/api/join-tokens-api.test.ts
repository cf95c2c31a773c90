/**
 * The join-token routes: create (ttl as a duration, a use count), list without secrets, revoke;
 * and joins with a token that does not join (revoked, expired, used up, malformed): each a 401
 * with its reason, no node made and no use taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../hub/auth/secrets.js';
import { ADMIN_TOKEN, SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
beforeAll(async () => {
  fleet = await SimFleet.start();
});
afterAll(async () => {
  await fleet.close();
});

const call = (method: string, url: string, body?: unknown, token: string | null = ADMIN_TOKEN) =>
  fleet.app.inject({
    method: method as 'GET',
    url,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    ...(body !== undefined ? { payload: body as object } : {}),
  });

interface Issued {
  id: string;
  token: string;
  expiresAt: string;
  uses: number | null;
  labels: Record<string, string>;
}

async function issue(body: object = {}): Promise<Issued> {
  const res = await call('POST', '/v1/join-tokens', body);
  expect(res.statusCode).toBe(201);
  return res.json() as Issued;
}

async function listed(id: string) {
  return ((await call('GET', '/v1/join-tokens')).json().joinTokens as Array<{ id: string; used: number; state: string }>).find((t) => t.id === id);
}

async function nodeCount(): Promise<number> {
  return ((await call('GET', '/v1/nodes')).json().nodes as unknown[]).length;
}

const join = (joinToken: string, name: string) => call('POST', '/v1/join', { joinToken, name }, null);

describe('join tokens through the API', () => {
  it('creates a token with a ttl as a duration, a use count and labels, and lists it without its secret', async () => {
    const before = Date.now();
    const issued = await issue({ ttl: '2h', uses: 2, labels: { zone: 'eu-1' } });
    expect(issued).toMatchObject({ id: expect.stringMatching(/^[0-9a-f]{12}$/), token: expect.stringMatching(/^tjt_/), uses: 2, labels: { zone: 'eu-1' } });
    const expiresMs = Date.parse(issued.expiresAt);
    expect(expiresMs).toBeGreaterThanOrEqual(before + 2 * 3_600_000);
    expect(expiresMs).toBeLessThan(Date.now() + 2 * 3_600_000 + 1000);

    const list = await call('GET', '/v1/join-tokens');
    expect(list.statusCode).toBe(200);
    expect(list.json().joinTokens).toContainEqual({
      id: issued.id,
      createdAt: expect.any(String),
      expiresAt: issued.expiresAt,
      labels: { zone: 'eu-1' },
      uses: 2,
      used: 0,
      usesLeft: 2,
      lastUsedAt: null,
      revokedAt: null,
      state: 'active',
    });
    expect(list.body).not.toContain(issued.token);
    expect(list.body).not.toContain(sha256(issued.token));
  });

  it('keeps ttlSeconds, and 24 hours without either', async () => {
    const byS = await issue({ ttlSeconds: 120 });
    expect(Date.parse(byS.expiresAt)).toBeLessThanOrEqual(Date.now() + 120_000);
    expect(byS.uses).toBeNull();
    const byDefault = await issue();
    expect(Date.parse(byDefault.expiresAt)).toBeGreaterThan(Date.now() + 24 * 3_600_000 - 60_000);
  });

  it.each([
    [{ ttl: '1.5h' }, 'ttl', /not a duration/],
    [{ ttl: '30s' }, 'ttl', /at least 1m/],
    [{ ttl: '9000h' }, 'ttl', /at most 8760h/],
    [{ ttl: '2h', ttlSeconds: 7200 }, 'ttl', /one of ttl and ttlSeconds/],
    [{ uses: 0 }, 'uses', />= 1/],
    [{ uses: 1.5 }, 'uses', /integer/],
  ])('refuses %j with 400 naming %s', async (body, path, reason) => {
    const before = (await call('GET', '/v1/join-tokens')).json().joinTokens.length;
    const res = await call('POST', '/v1/join-tokens', body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(reason) })]));
    expect((await call('GET', '/v1/join-tokens')).json().joinTokens.length).toBe(before);
  });

  it('revokes a token by its id (404 for an unknown id); a join with it is refused as revoked', async () => {
    const issued = await issue();
    const revoked = await call('DELETE', `/v1/join-tokens/${issued.id}`);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ id: issued.id, state: 'revoked', revokedAt: expect.any(String) });
    expect(await listed(issued.id)).toMatchObject({ state: 'revoked' });
    const unknown = await call('DELETE', '/v1/join-tokens/0123456789ab');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('join_token_not_found');

    const nodes = await nodeCount();
    const res = await join(issued.token, 'after-revoke');
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toMatchObject({ code: 'invalid_join_token', message: expect.stringMatching(/was revoked/), details: [{ path: 'joinToken', message: 'revoked' }] });
    expect(await nodeCount()).toBe(nodes);
    expect(await listed(issued.id)).toMatchObject({ used: 0 });
  });

  it('joins as many nodes as the token allows, then refuses it as used up', async () => {
    const issued = await issue({ uses: 2 });
    expect((await join(issued.token, 'use-1')).statusCode).toBe(201);
    // A join refused for its name takes no use.
    expect((await join(issued.token, 'use-1')).statusCode).toBe(409);
    expect((await join(issued.token, 'use-2')).statusCode).toBe(201);
    const nodes = await nodeCount();
    const res = await join(issued.token, 'use-3');
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toMatchObject({ code: 'invalid_join_token', message: expect.stringMatching(/used up/), details: [{ path: 'joinToken', message: 'used_up' }] });
    expect(await nodeCount()).toBe(nodes);
    expect(await listed(issued.id)).toMatchObject({ used: 2, usesLeft: 0, state: 'used_up' });
  });

  it('gives the last use to one of two joins sent at once', async () => {
    const issued = await issue({ uses: 1 });
    const [a, b] = await Promise.all([join(issued.token, 'racer-a'), join(issued.token, 'racer-b')]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 401]);
    expect(await listed(issued.id)).toMatchObject({ used: 1, state: 'used_up' });
  });

  it('refuses an expired token as expired, and a malformed one as malformed', async () => {
    const issued = await issue();
    const record = fleet.hub.store.getJoinToken(sha256(issued.token))!;
    await fleet.hub.store.putJoinToken({ ...record, expiresAt: new Date(Date.now() - 1000).toISOString() });
    const nodes = await nodeCount();
    const expired = await join(issued.token, 'late');
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error).toMatchObject({ code: 'invalid_join_token', message: expect.stringMatching(/expired at/), details: [{ path: 'joinToken', message: 'expired' }] });
    expect(await listed(issued.id)).toMatchObject({ used: 0, state: 'expired' });

    for (const bad of ['hello', `${issued.token} `, `"${issued.token}"`, 'tat_test-admin-token']) {
      const res = await join(bad, 'malformed');
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toMatchObject({ code: 'invalid_join_token', message: expect.stringMatching(/malformed/), details: [{ path: 'joinToken', message: 'malformed' }] });
    }
    expect(await nodeCount()).toBe(nodes);
  });

  it('refuses a token past the limit with 409, and makes none; dead tokens make room', async () => {
    // Tokens that no longer join (from the tests above) are dropped to make room: fill with live ones.
    const live = ((await call('GET', '/v1/join-tokens')).json().joinTokens as Array<{ state: string }>).filter((t) => t.state === 'active').length;
    expect([...fleet.hub.store.listJoinTokens()].length).toBeGreaterThan(live);
    const at = new Date(Date.now() + 3_600_000).toISOString();
    await Promise.all(
      Array.from({ length: 1000 - live }, (_, i) =>
        fleet.hub.store.putJoinToken({ tokenHash: sha256(`filler-${i}`), id: `f${String(i).padStart(11, '0')}`, createdAt: new Date().toISOString(), expiresAt: at }),
      ),
    );
    const res = await call('POST', '/v1/join-tokens', {});
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: 'too_many_join_tokens', message: expect.stringMatching(/at most 1000 .*DELETE \/v1\/join-tokens/) });
    expect([...fleet.hub.store.listJoinTokens()]).toHaveLength(1000);
    // One revoked makes room.
    expect((await call('DELETE', '/v1/join-tokens/f00000000000')).statusCode).toBe(200);
    expect((await call('POST', '/v1/join-tokens', {})).statusCode).toBe(201);
    expect([...fleet.hub.store.listJoinTokens()]).toHaveLength(1000);
  });

  it.each([
    ['GET', '/v1/join-tokens'],
    ['DELETE', '/v1/join-tokens/0123456789ab'],
  ])('refuses %s %s without the admin token', async (method, url) => {
    expect((await call(method, url, undefined, null)).statusCode).toBe(401);
    expect((await call(method, url, undefined, 'tat_wrong')).statusCode).toBe(401);
  });
});
