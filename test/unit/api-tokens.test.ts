import { describe, expect, it } from 'vitest';
import { ApiTokens, ApiTokenNameTakenError } from '../../hub/auth/api-tokens.js';
import { parseTokenTtl } from '../../hub/auth/token-ttl.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { tempStores } from '../helpers/temp-stores.js';

const stores = tempStores('tether-api-tokens-');
const ADMIN = 'tat_the-first-admin-token';
const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const HOUR_MS = 3_600_000;

async function tokens(clock = { ms: T0 }): Promise<{ tokens: ApiTokens; store: LowdbStore; clock: { ms: number } }> {
  const store = stores.keep(new LowdbStore({ dir: stores.dir, nodeShards: 2, serviceShards: 2 }));
  await store.open();
  return { tokens: new ApiTokens({ store, adminToken: ADMIN, clock: { nowMs: () => clock.ms } }), store, clock };
}

describe('ApiTokens', () => {
  it('takes the first admin token as an admin named "admin"', async () => {
    const { tokens: t } = await tokens();
    expect(t.authenticate(ADMIN)).toEqual({ ok: true, principal: { tokenId: 'admin', name: 'admin', role: 'admin' } });
  });

  it('gives a token once, stores only its digest, and knows its role', async () => {
    const { tokens: t, store } = await tokens();
    const made = await t.create({ role: 'operator', name: 'ci', ttlMs: null });
    expect(made.token).toMatch(/^tat_[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(made).toMatchObject({ name: 'ci', role: 'operator', createdAt: new Date(T0).toISOString(), expiresAt: null });
    expect(t.authenticate(made.token)).toEqual({ ok: true, principal: { tokenId: made.id, name: 'ci', role: 'operator' } });
    const stored = store.getApiToken(made.id)!;
    expect(JSON.stringify(stored)).not.toContain(made.token.split('.')[1]);
    // The list never shows a secret, nor its digest.
    const listed = t.list();
    expect(listed).toEqual([{ id: made.id, name: 'ci', role: 'operator', createdAt: made.createdAt, expiresAt: null, lastUsedAt: new Date(T0).toISOString(), expired: false }]);
    expect(JSON.stringify(listed)).not.toContain(stored.secretHash);
  });

  it('refuses a token past its expiry, and says so', async () => {
    const { tokens: t, clock } = await tokens();
    const made = await t.create({ role: 'viewer', name: 'dash', ttlMs: 2 * HOUR_MS });
    expect(made.expiresAt).toBe(new Date(T0 + 2 * HOUR_MS).toISOString());
    clock.ms = T0 + 2 * HOUR_MS - 1;
    expect(t.authenticate(made.token).ok).toBe(true);
    clock.ms = T0 + 2 * HOUR_MS;
    const refused = t.authenticate(made.token);
    expect(refused).toEqual({ ok: false, reason: expect.stringMatching(/expired/) });
    expect(t.list()[0]).toMatchObject({ id: made.id, expired: true });
  });

  it('refuses a revoked token for good, across a restart', async () => {
    const { tokens: t } = await tokens();
    const made = await t.create({ role: 'admin', name: 'ops', ttlMs: null });
    const other = await t.create({ role: 'viewer', name: 'dash', ttlMs: null });
    expect((await t.revoke(made.id))?.name).toBe('ops');
    expect(await t.revoke(made.id)).toBeNull();
    expect(t.authenticate(made.token).ok).toBe(false);
    expect(t.list().map((x) => x.id)).toEqual([other.id]);
    await stores.closeAll();
    const { tokens: again } = await tokens();
    expect(again.authenticate(made.token).ok).toBe(false);
    expect(again.authenticate(other.token).ok).toBe(true);
  });

  it.each([
    ['no token', null],
    ['an empty one', ''],
    ['a wrong secret of a real id', 'WRONG'],
    ['an unknown id', 'tat_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['garbage', 'not-a-token'],
    ['a node credential', 'tnc_node-1.AAAAAAAAAAAAAAAAAAAAAAAA'],
    ['the admin token with a suffix', `${ADMIN}x`],
  ])('refuses %s', async (_what, given) => {
    const { tokens: t } = await tokens();
    const made = await t.create({ role: 'admin', name: 'ops', ttlMs: null });
    const token = given === 'WRONG' ? `${made.token.split('.')[0]}.${'B'.repeat(43)}` : given;
    expect(t.authenticate(token)).toEqual({ ok: false, reason: expect.any(String) });
  });

  it('refuses a name in use and the reserved "admin"', async () => {
    const { tokens: t } = await tokens();
    await t.create({ role: 'viewer', name: 'dash', ttlMs: null });
    await expect(t.create({ role: 'admin', name: 'dash', ttlMs: null })).rejects.toBeInstanceOf(ApiTokenNameTakenError);
    await expect(t.create({ role: 'admin', name: 'admin', ttlMs: null })).rejects.toBeInstanceOf(ApiTokenNameTakenError);
    expect(t.list()).toHaveLength(1);
  });
});

describe('parseTokenTtl', () => {
  it.each([
    ['30d', 30 * 24 * HOUR_MS],
    ['12h', 12 * HOUR_MS],
    ['90m', 90 * 60_000],
  ])('reads %s', (text, ms) => expect(parseTokenTtl(text)).toEqual({ ok: true, ms }));

  it.each(['', '0d', '1.5d', '30 d', '-1h', '59s', '3651d', 'forever'])('refuses %j with a reason', (text) => {
    const parsed = parseTokenTtl(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(/ttl/);
  });
});
