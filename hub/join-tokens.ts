/**
 * Join tokens: what a new device presents once to become a node. Each has an expiry, may have a
 * number of uses, may give labels to the nodes that join with it, and can be revoked.
 *
 * The store keeps a token's sha256 only, as it does any credential; the token is shown once, at
 * creation. An id, random and unrelated to the token, names it in the API (list, revoke), in the
 * way kubeadm's and Nomad's tokens have a public accessor next to their secret.
 *
 * A use is taken in the same tick as the token is checked (redeem), with no await between:
 * the store changes memory at once, so two joins racing for the last use cannot both see it free.
 * Tokens that no longer join (expired, used up, revoked) are kept for keepDeadMs, so that a device
 * is told why and the operator sees what happened, then dropped; there are never more than
 * maxTokens, so that a script making tokens in a loop cannot grow the store without bound.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { newSecret, sameDigest, sha256 } from './auth/secrets.js';
import type { JoinTokenRecord, Store } from './store/store.js';

const PREFIX = 'tjt_';
/**
 * What a join token can be: the prefix, then base64url. A string of other characters (a quote or
 * a space picked up when pasting it, another kind of token) was never issued by any hub.
 */
const TOKEN_SHAPE_RE = /^tjt_[A-Za-z0-9_-]+$/;
/** The store holds at most this many join tokens (dead ones make room for a new one). */
export const MAX_JOIN_TOKENS = 1000;
/** How long a token that no longer joins is kept and listed before it is dropped. */
export const KEEP_DEAD_JOIN_TOKENS_MS = 24 * 60 * 60 * 1000;

export type JoinTokenState = 'active' | 'expired' | 'used_up' | 'revoked';
export type JoinTokenRefusal = 'malformed' | 'unknown' | Exclude<JoinTokenState, 'active'>;

/** A join token as the API shows it: everything but the token. */
export interface JoinTokenView {
  id: string;
  createdAt: string;
  expiresAt: string;
  labels: Record<string, string>;
  /** Joins it allows; null: any number until it expires. */
  uses: number | null;
  used: number;
  /** null: any number. */
  usesLeft: number | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  state: JoinTokenState;
}

/** What creating a token answers: the token itself, shown this once. */
export interface IssuedJoinToken {
  id: string;
  token: string;
  expiresAt: string;
  uses: number | null;
  labels: Record<string, string>;
}

const ASK_FOR_ONE = 'ask the hub operator for a new one (POST /v1/join-tokens)';

/** A join refused for its token; `reason` is stable, the message says what to do. */
export class JoinTokenRefusedError extends Error {
  readonly code = 'invalid_join_token';
  constructor(
    readonly reason: JoinTokenRefusal,
    record?: JoinTokenRecord,
  ) {
    super(refusalMessage(reason, record));
  }
}

function refusalMessage(reason: JoinTokenRefusal, record: JoinTokenRecord | undefined): string {
  const which = record?.id ? `join token ${record.id}` : 'join token';
  switch (reason) {
    case 'malformed':
      return `join token is malformed: a join token is "${PREFIX}" followed by letters, digits, "-" and "_" (check that it was copied whole)`;
    case 'unknown':
      return `join token is unknown or expired: ${ASK_FOR_ONE}`;
    case 'expired':
      return `${which} expired at ${record?.expiresAt}: ${ASK_FOR_ONE}`;
    case 'used_up':
      return `${which} is used up (${record?.uses} of ${record?.uses} joins made): ${ASK_FOR_ONE}`;
    case 'revoked':
      return `${which} was revoked at ${record?.revokedAt}: ${ASK_FOR_ONE}`;
  }
}

export class TooManyJoinTokensError extends Error {
  readonly code = 'too_many_join_tokens';
  constructor(readonly max: number) {
    super(`the hub keeps at most ${max} join tokens and all of them still join: revoke some (DELETE /v1/join-tokens/:id)`);
  }
}

export interface JoinTokenOptions {
  store: Pick<Store, 'getJoinToken' | 'listJoinTokens' | 'putJoinToken' | 'deleteJoinToken'>;
  logger: Pick<Logger, 'info' | 'error'>;
  /** Wall-clock time: expiry is a date the operator reads. Tests pass a fake one. */
  nowMs?: () => number;
  maxTokens?: number;
  keepDeadMs?: number;
}

/** A use taken by redeem. */
export interface Redemption<T> {
  /** What `admit` returned. */
  admitted: T;
  /** The use, on disk when it counts against a limit (else written within a second or so). */
  used: Promise<void>;
  /** Returns the use (the join it was for could not be completed). */
  giveBack(): Promise<void>;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class JoinTokens {
  private readonly nowMs: () => number;
  private readonly maxTokens: number;
  private readonly keepDeadMs: number;
  /** Gathered use counts share a write, and its failure: one line for all of them. */
  private readonly useCountLog: RateLimitedLog;

  constructor(private readonly opts: JoinTokenOptions) {
    this.useCountLog = new RateLimitedLog((obj, msg) => opts.logger.error(obj, msg));
    this.nowMs = opts.nowMs ?? Date.now;
    this.maxTokens = opts.maxTokens ?? MAX_JOIN_TOKENS;
    this.keepDeadMs = opts.keepDeadMs ?? KEEP_DEAD_JOIN_TOKENS_MS;
  }

  /** A new token, valid for ttlMs and, when given, for `uses` joins. Throws TooManyJoinTokensError past maxTokens. */
  async create({ ttlMs, uses, labels = {} }: { ttlMs: number; uses?: number; labels?: Record<string, string> }): Promise<IssuedJoinToken> {
    if (!(Number.isSafeInteger(ttlMs) && ttlMs > 0)) throw new Error(`join token ttlMs must be a positive integer, not ${ttlMs}`);
    if (uses !== undefined && !(Number.isSafeInteger(uses) && uses > 0)) throw new Error(`join token uses must be a positive integer, not ${uses}`);
    const now = this.nowMs();
    // Counted and put in one tick: two creates at the limit cannot both pass.
    const writes = this.sweep(now);
    const room = this.maxTokens - this.count();
    if (room <= 0) writes.push(...this.dropDead(now, 1 - room));
    if (this.count() >= this.maxTokens) {
      await Promise.all(writes);
      throw new TooManyJoinTokensError(this.maxTokens);
    }
    const token = newSecret(PREFIX);
    const record: JoinTokenRecord = {
      tokenHash: sha256(token),
      id: this.newId(),
      createdAt: iso(now),
      expiresAt: iso(now + ttlMs),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(uses !== undefined ? { uses } : {}),
    };
    writes.push(this.opts.store.putJoinToken(record));
    await Promise.all(writes);
    this.opts.logger.info({ joinTokenId: record.id, expiresAt: record.expiresAt, uses: uses ?? null }, 'join token created');
    return { id: record.id!, token, expiresAt: record.expiresAt, uses: uses ?? null, labels };
  }

  /** Every token kept, oldest first, without their secrets. */
  async list(): Promise<JoinTokenView[]> {
    const now = this.nowMs();
    await Promise.all([...this.sweep(now), ...this.identify()]);
    return [...this.opts.store.listJoinTokens()].sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map((r) => this.view(r, now));
  }

  /** Revokes the token of that id (again: nothing changes); undefined for an unknown id. */
  async revoke(id: string): Promise<JoinTokenView | undefined> {
    await Promise.all(this.identify());
    const record = this.byId(id);
    if (!record) return undefined;
    const now = this.nowMs();
    if (record.revokedAt) return this.view(record, now);
    const revoked = { ...record, revokedAt: iso(now) };
    await this.opts.store.putJoinToken(revoked);
    this.opts.logger.info({ joinTokenId: id }, 'join token revoked');
    return this.view(revoked, now);
  }

  /**
   * Checks `token`, calls `admit` with its record, and takes one of its uses, all synchronously:
   * no other join runs between the check and the use. `admit` may refuse the join by throwing (a
   * name taken, say); no use is taken then. Throws JoinTokenRefusedError when the token does not join.
   */
  redeem<T>(token: string, admit: (record: JoinTokenRecord) => T): Redemption<T> {
    const now = this.nowMs();
    if (!TOKEN_SHAPE_RE.test(token)) throw new JoinTokenRefusedError('malformed');
    const hash = sha256(token);
    const record = this.opts.store.getJoinToken(hash);
    if (!record || !sameDigest(record.tokenHash, hash)) throw new JoinTokenRefusedError('unknown');
    const state = stateOf(record, now);
    if (state !== 'active') throw new JoinTokenRefusedError(state, record);
    const admitted = admit(record);
    const next = { ...record, used: (record.used ?? 0) + 1, lastUsedAt: iso(now) };
    if (record.uses !== undefined) {
      // A use that counts against a limit is durable before the join answers: a hub restarted
      // after a crash must never let a used-up token join once more.
      return { admitted, used: this.opts.store.putJoinToken(next), giveBack: () => this.giveBack(hash) };
    }
    // Without a limit the count only informs, and a fleet installing at once would otherwise write
    // the token once per join (some 3 MB for 10,000 joins): its writes are gathered, a second
    // apart at most, retried should one fail, and a crash in between loses a few counts at most.
    this.opts.store.putJoinToken(next, { lazy: true }).catch((err: unknown) => this.useCountLog.log({ err, joinTokenId: record.id }, 'could not yet store the use count of a join token; retrying'));
    return { admitted, used: Promise.resolve(), giveBack: () => this.giveBack(hash) };
  }

  private async giveBack(tokenHash: string): Promise<void> {
    const current = this.opts.store.getJoinToken(tokenHash);
    if (!current?.used) return;
    await this.opts.store.putJoinToken({ ...current, used: current.used - 1 });
  }

  private view(r: JoinTokenRecord, now: number): JoinTokenView {
    const used = r.used ?? 0;
    return {
      id: r.id ?? '',
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      labels: r.labels ?? {},
      uses: r.uses ?? null,
      used,
      usesLeft: r.uses === undefined ? null : Math.max(0, r.uses - used),
      lastUsedAt: r.lastUsedAt ?? null,
      revokedAt: r.revokedAt ?? null,
      state: stateOf(r, now),
    };
  }

  /** Drops the tokens dead for keepDeadMs; memory changes at once, the promises are the writes. */
  private sweep(now: number): Array<Promise<void>> {
    const writes: Array<Promise<void>> = [];
    for (const r of [...this.opts.store.listJoinTokens()]) {
      const deadSince = deadSinceMs(r, now);
      if (deadSince !== null && now - deadSince >= this.keepDeadMs) writes.push(this.opts.store.deleteJoinToken(r.tokenHash));
    }
    return writes;
  }

  /** Drops up to `count` dead tokens, longest dead first, however recently they died. */
  private dropDead(now: number, count: number): Array<Promise<void>> {
    const dead: Array<{ r: JoinTokenRecord; since: number }> = [];
    for (const r of this.opts.store.listJoinTokens()) {
      const since = deadSinceMs(r, now);
      if (since !== null) dead.push({ r, since });
    }
    dead.sort((a, b) => a.since - b.since);
    return dead.slice(0, count).map(({ r }) => this.opts.store.deleteJoinToken(r.tokenHash));
  }

  /** Tokens stored before tokens had ids get one, so that they can be listed and revoked. */
  private identify(): Array<Promise<void>> {
    const writes: Array<Promise<void>> = [];
    for (const r of [...this.opts.store.listJoinTokens()]) if (!r.id) writes.push(this.opts.store.putJoinToken({ ...r, id: this.newId() }));
    return writes;
  }

  /** O(tokens), at most maxTokens: listing and revoking are an operator's, never per frame. */
  private byId(id: string): JoinTokenRecord | undefined {
    for (const r of this.opts.store.listJoinTokens()) if (r.id === id) return r;
    return undefined;
  }

  private count(): number {
    let n = 0;
    for (const _ of this.opts.store.listJoinTokens()) n++;
    return n;
  }

  /** 48 random bits: short enough to type, and unique among the at most maxTokens kept. */
  private newId(): string {
    for (;;) {
      const id = randomBytes(6).toString('hex');
      if (!this.byId(id)) return id;
    }
  }
}

function stateOf(r: JoinTokenRecord, now: number): JoinTokenState {
  if (r.revokedAt) return 'revoked';
  // A date that does not parse (a record edited by hand) joins nothing.
  if (!(Date.parse(r.expiresAt) > now)) return 'expired';
  if (r.uses !== undefined && (r.used ?? 0) >= r.uses) return 'used_up';
  return 'active';
}

/** When the token stopped joining (the earliest of revoked, used up, expired), or null if it still does. */
function deadSinceMs(r: JoinTokenRecord, now: number): number | null {
  const ends: number[] = [];
  if (r.revokedAt) ends.push(Date.parse(r.revokedAt));
  if (r.uses !== undefined && (r.used ?? 0) >= r.uses) ends.push(Date.parse(r.lastUsedAt ?? r.createdAt));
  const expiresAt = Date.parse(r.expiresAt);
  if (!(expiresAt > now)) ends.push(expiresAt);
  // A date that does not parse (a record edited by hand) counts as long dead.
  return ends.length === 0 ? null : Math.min(...ends.map((t) => (Number.isNaN(t) ? 0 : t)));
}
