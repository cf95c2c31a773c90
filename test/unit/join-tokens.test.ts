/**
 * Join tokens on a real store with a fake wall clock: expiry, use counts (two joins racing for the
 * last use), revocation, what the listing shows, and how the collection stays bounded.
 */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../../hub/auth/secrets.js';
import { JoinTokenRefusedError, JoinTokens, TooManyJoinTokensError, type JoinTokenOptions } from '../../hub/join-tokens.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { silentLogger } from '../helpers/silent-logger.js';
import { tempStores } from '../helpers/temp-stores.js';

const stores = tempStores('tether-join-tokens-');
const HOUR_MS = 3_600_000;
const T0 = Date.parse('2026-06-01T12:00:00.000Z');

async function setUp(opts: Partial<JoinTokenOptions> = {}) {
  const store = stores.keep(new LowdbStore({ dir: stores.dir }));
  await store.open();
  const clock = { ms: T0 };
  const tokens = new JoinTokens({ store, logger: silentLogger, nowMs: () => clock.ms, ...opts });
  return { store, clock, tokens };
}

/** A join as the node directory makes one: the token's use is taken in the tick of its check. */
async function join(tokens: JoinTokens, token: string): Promise<string> {
  const { admitted, used } = tokens.redeem(token, (record) => `joined with ${record.id}`);
  await used;
  return admitted;
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof JoinTokenRefusedError) return error.reason;
    throw error;
  }
  throw new Error('not refused');
}

describe('join tokens', () => {
  it('names each token by an id that is not derived from it, lists them without their secrets, and stores digests only', async () => {
    const { tokens } = await setUp();
    const issued = await tokens.create({ ttlMs: 2 * HOUR_MS, uses: 3, labels: { zone: 'eu-1' } });
    expect(issued.token).toMatch(/^tjt_[A-Za-z0-9_-]{43}$/);
    expect(issued).toMatchObject({ expiresAt: new Date(T0 + 2 * HOUR_MS).toISOString(), uses: 3, labels: { zone: 'eu-1' } });
    expect(issued.token).not.toContain(issued.id);
    expect(sha256(issued.token)).not.toContain(issued.id);

    const listed = await tokens.list();
    expect(listed).toEqual([
      {
        id: issued.id,
        createdAt: new Date(T0).toISOString(),
        expiresAt: issued.expiresAt,
        labels: { zone: 'eu-1' },
        uses: 3,
        used: 0,
        usesLeft: 3,
        lastUsedAt: null,
        revokedAt: null,
        state: 'active',
      },
    ]);
    const onDisk = await readFile(path.join(stores.dir, 'join-tokens-00.json'), 'utf8');
    expect(onDisk).not.toContain(issued.token);
    expect(onDisk).not.toContain(issued.token.slice(4));
    expect(onDisk).toContain(sha256(issued.token));
  });

  it('joins until the token expires, then refuses it as expired and lists it so', async () => {
    const { tokens, clock } = await setUp();
    const { token, id } = await tokens.create({ ttlMs: HOUR_MS });
    await expect(join(tokens, token)).resolves.toBe(`joined with ${id}`);
    clock.ms = T0 + HOUR_MS - 1;
    await expect(join(tokens, token)).resolves.toBe(`joined with ${id}`);
    clock.ms = T0 + HOUR_MS;
    expect(refusal(() => tokens.redeem(token, () => null))).toBe('expired');
    expect((await tokens.list())[0]).toMatchObject({ id, state: 'expired', used: 2, usesLeft: null });
  });

  it('counts uses: a token made for two joins joins two nodes, then is refused as used up', async () => {
    const { tokens, store } = await setUp();
    const { token, id } = await tokens.create({ ttlMs: HOUR_MS, uses: 2 });
    await join(tokens, token);
    expect((await tokens.list())[0]).toMatchObject({ used: 1, usesLeft: 1, state: 'active', lastUsedAt: new Date(T0).toISOString() });
    await join(tokens, token);
    expect(refusal(() => tokens.redeem(token, () => null))).toBe('used_up');
    expect((await tokens.list())[0]).toMatchObject({ id, used: 2, usesLeft: 0, state: 'used_up' });
    // The count is durable: a restarted hub refuses it too.
    await stores.closeAll();
    const reopened = stores.keep(new LowdbStore({ dir: stores.dir }));
    await reopened.open();
    const again = new JoinTokens({ store: reopened, logger: silentLogger, nowMs: () => T0 });
    expect(refusal(() => again.redeem(token, () => null))).toBe('used_up');
    expect(store).not.toBe(reopened);
  });

  it('without a use count, joins any number of nodes until it expires', async () => {
    const { tokens } = await setUp();
    const { token } = await tokens.create({ ttlMs: HOUR_MS });
    for (let i = 0; i < 20; i++) await join(tokens, token);
    expect((await tokens.list())[0]).toMatchObject({ uses: null, used: 20, usesLeft: null, state: 'active' });
  });

  it('gives the last use to exactly one of several joins racing for it', async () => {
    const { tokens } = await setUp();
    const { token } = await tokens.create({ ttlMs: HOUR_MS, uses: 2 });
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => join(tokens, token)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(refused).toHaveLength(3);
    for (const r of refused) expect((r.reason as JoinTokenRefusedError).reason).toBe('used_up');
    expect((await tokens.list())[0]).toMatchObject({ used: 2, usesLeft: 0 });
  });

  it('takes no use when the join is refused for another reason (a name taken, say)', async () => {
    const { tokens } = await setUp();
    const { token } = await tokens.create({ ttlMs: HOUR_MS, uses: 1 });
    expect(() =>
      tokens.redeem(token, () => {
        throw new Error('name taken');
      }),
    ).toThrow('name taken');
    await expect(join(tokens, token)).resolves.toMatch(/^joined/);
  });

  it('gives a use back when the join could not be completed', async () => {
    const { tokens } = await setUp();
    const { token } = await tokens.create({ ttlMs: HOUR_MS, uses: 1 });
    const { used, giveBack } = tokens.redeem(token, () => null);
    await used;
    await giveBack();
    expect((await tokens.list())[0]).toMatchObject({ used: 0, usesLeft: 1 });
    await expect(join(tokens, token)).resolves.toMatch(/^joined/);
  });

  it('revokes a token by its id: joins with it are refused as revoked; an unknown id is undefined', async () => {
    const { tokens } = await setUp();
    const kept = await tokens.create({ ttlMs: HOUR_MS });
    const revoked = await tokens.create({ ttlMs: HOUR_MS });
    const view = await tokens.revoke(revoked.id);
    expect(view).toMatchObject({ id: revoked.id, state: 'revoked', revokedAt: new Date(T0).toISOString() });
    expect(refusal(() => tokens.redeem(revoked.token, () => null))).toBe('revoked');
    await expect(join(tokens, kept.token)).resolves.toMatch(/^joined/);
    await expect(tokens.revoke('0123456789ab')).resolves.toBeUndefined();
    // Revoking again changes nothing.
    await expect(tokens.revoke(revoked.id)).resolves.toEqual(view);
  });

  it('refuses a malformed token and one it never issued, each with its reason', async () => {
    const { tokens } = await setUp();
    await tokens.create({ ttlMs: HOUR_MS });
    for (const bad of ['not-a-token', 'tjt_has space', 'tjt_', '"tjt_abc"', 'TJT_abc']) expect(refusal(() => tokens.redeem(bad, () => null))).toBe('malformed');
    expect(refusal(() => tokens.redeem(`tjt_${'A'.repeat(43)}`, () => null))).toBe('unknown');
    expect(refusal(() => tokens.redeem('tjt_nope', () => null))).toBe('unknown');
  });

  it('drops expired, used-up and revoked tokens once they have been dead a while, and keeps live ones', async () => {
    const { tokens, clock, store } = await setUp({ keepDeadMs: HOUR_MS });
    const live = await tokens.create({ ttlMs: 10 * HOUR_MS });
    const expiring = await tokens.create({ ttlMs: HOUR_MS });
    const usedUp = await tokens.create({ ttlMs: 10 * HOUR_MS, uses: 1 });
    const revoked = await tokens.create({ ttlMs: 10 * HOUR_MS });
    clock.ms = T0 + HOUR_MS;
    await join(tokens, usedUp.token);
    await tokens.revoke(revoked.id);
    clock.ms = T0 + HOUR_MS + 1;
    // Dead, but not yet for long: listed, and refused with their reason.
    expect((await tokens.list()).map((t) => t.state).sort()).toEqual(['active', 'expired', 'revoked', 'used_up']);
    clock.ms = T0 + 2 * HOUR_MS + 1;
    expect((await tokens.list()).map((t) => t.id)).toEqual([live.id]);
    expect([...store.listJoinTokens()]).toHaveLength(1);
    expect(refusal(() => tokens.redeem(expiring.token, () => null))).toBe('unknown');
  });

  it('keeps at most maxTokens: dead ones make room at once, and past that a new one is refused', async () => {
    const { tokens } = await setUp({ maxTokens: 3 });
    const a = await tokens.create({ ttlMs: HOUR_MS });
    await tokens.create({ ttlMs: HOUR_MS });
    await tokens.create({ ttlMs: HOUR_MS });
    await expect(tokens.create({ ttlMs: HOUR_MS })).rejects.toBeInstanceOf(TooManyJoinTokensError);
    expect(await tokens.list()).toHaveLength(3);
    await tokens.revoke(a.id);
    const d = await tokens.create({ ttlMs: HOUR_MS });
    expect((await tokens.list()).map((t) => t.id)).not.toContain(a.id);
    expect((await tokens.list()).map((t) => t.id)).toContain(d.id);
  });

  it('gives tokens stored before they had ids an id of their own, which revokes them', async () => {
    const { tokens, store } = await setUp();
    const token = `tjt_${'b'.repeat(43)}`;
    await store.putJoinToken({ tokenHash: sha256(token), createdAt: new Date(T0).toISOString(), expiresAt: new Date(T0 + HOUR_MS).toISOString() });
    const [listed] = await tokens.list();
    expect(listed!.id).toMatch(/^[0-9a-f]{12}$/);
    expect((await tokens.list())[0]!.id).toBe(listed!.id);
    await join(tokens, token);
    await tokens.revoke(listed!.id);
    expect(refusal(() => tokens.redeem(token, () => null))).toBe('revoked');
  });
});
