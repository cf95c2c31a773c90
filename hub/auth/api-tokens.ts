import { randomBytes } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import type { ApiTokenRecord, Store } from '../store/store.js';
import type { Role } from './roles.js';
import { newSecret, sameDigest, sha256 } from './secrets.js';

/** Tokens kept at once: each is a line of a small file read at every start, and a list nobody reads past a few dozen. */
export const MAX_API_TOKENS = 1000;

/** The name of the first admin token (the data dir's admin-token file): taken, for good. */
export const FIRST_ADMIN_NAME = 'admin';

/** Names are for people and for the audit log: short, plain, no spaces to quote. */
const NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/;

/**
 * `tat_<id>.<secret>`: the id finds the record in O(1) and names the token in lists and the audit
 * log; only the secret's digest is kept. The first admin token has the same prefix and no dot.
 */
const TOKEN_RE = /^tat_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

/** Who made a request, as the access hook and the audit log know it. */
export interface Principal {
  /** The token's id; "admin" for the first admin token. */
  tokenId: string;
  name: string;
  role: Role;
}

export type Authentication = { ok: true; principal: Principal } | { ok: false; reason: string };

/** What lists show of a token: never its secret nor its digest. */
export interface ApiTokenView {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  expiresAt: string | null;
  /** Last request it authenticated since the hub started (kept in memory: a store write per request is not worth it). */
  lastUsedAt: string | null;
  expired: boolean;
}

export class ApiTokenNameTakenError extends Error {
  readonly code = 'api_token_name_taken';
  constructor(readonly tokenName: string) {
    super(tokenName === FIRST_ADMIN_NAME ? `"${FIRST_ADMIN_NAME}" is the first admin token's name` : `an API token named "${tokenName}" exists; revoke it first or pick another name`);
  }
}

export class TooManyApiTokensError extends Error {
  readonly code = 'too_many_api_tokens';
  constructor() {
    super(`the hub keeps at most ${MAX_API_TOKENS} API tokens; revoke some first`);
  }
}

export function validTokenName(name: string): boolean {
  return NAME_RE.test(name);
}

/**
 * API tokens: the first admin token (given by the data dir, valid until that file changes) and the
 * tokens made through the API for a role, kept in the store as digests.
 */
export class ApiTokens {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly adminDigest: string;
  /** Token id -> when it last authenticated a request (ms); entries leave with their token. */
  private readonly lastUsedMs = new Map<string, number>();

  constructor(opts: { store: Store; adminToken: string; clock: Clock }) {
    this.store = opts.store;
    this.clock = opts.clock;
    this.adminDigest = sha256(opts.adminToken);
  }

  /** The principal a bearer token stands for, or why none: the reason is for the client, and says nothing a guesser could use. */
  authenticate(token: string | null): Authentication {
    if (!token) return { ok: false, reason: 'missing "Authorization: Bearer <token>" header' };
    const digest = sha256(token);
    if (sameDigest(digest, this.adminDigest)) return { ok: true, principal: { tokenId: FIRST_ADMIN_NAME, name: FIRST_ADMIN_NAME, role: 'admin' } };
    const invalid = { ok: false as const, reason: 'invalid admin token or API token (unknown, revoked or malformed)' };
    const m = TOKEN_RE.exec(token);
    if (!m) return invalid;
    const record = this.store.getApiToken(m[1]!);
    if (!record || !sameDigest(sha256(m[2]!), record.secretHash)) return invalid;
    const nowMs = this.clock.nowMs();
    if (record.expiresAt !== null && nowMs >= Date.parse(record.expiresAt)) {
      return { ok: false, reason: `API token "${record.name}" expired at ${record.expiresAt}; ask an admin for a new one` };
    }
    this.lastUsedMs.set(record.id, nowMs);
    return { ok: true, principal: { tokenId: record.id, name: record.name, role: record.role } };
  }

  /** Makes a token; its secret is in the answer and nowhere else. Rejects with ApiTokenNameTakenError or TooManyApiTokensError. */
  async create(input: { role: Role; name: string; ttlMs: number | null }): Promise<ApiTokenView & { token: string }> {
    if (!validTokenName(input.name)) throw new RangeError(`invalid API token name ${JSON.stringify(input.name)}`);
    const existing = [...this.store.listApiTokens()];
    // Checked and put in one turn: memory changes at the put, so two requests cannot both pass.
    if (input.name === FIRST_ADMIN_NAME || existing.some((t) => t.name === input.name)) throw new ApiTokenNameTakenError(input.name);
    if (existing.length >= MAX_API_TOKENS) throw new TooManyApiTokensError();
    let id = randomBytes(8).toString('hex');
    while (this.store.getApiToken(id)) id = randomBytes(8).toString('hex');
    const secret = newSecret('', 32);
    const nowMs = this.clock.nowMs();
    const record: ApiTokenRecord = {
      id,
      name: input.name,
      role: input.role,
      secretHash: sha256(secret),
      createdAt: new Date(nowMs).toISOString(),
      expiresAt: input.ttlMs === null ? null : new Date(nowMs + input.ttlMs).toISOString(),
    };
    await this.store.putApiToken(record);
    return { ...this.view(record), token: `tat_${id}.${secret}` };
  }

  /** Oldest first. */
  list(): ApiTokenView[] {
    return [...this.store.listApiTokens()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id)).map((t) => this.view(t));
  }

  /** Revokes a token for good (its record goes); null when no token has that id. */
  async revoke(id: string): Promise<ApiTokenView | null> {
    const record = this.store.getApiToken(id);
    if (!record) return null;
    const view = this.view(record);
    await this.store.deleteApiToken(id);
    this.lastUsedMs.delete(id);
    return view;
  }

  private view(record: ApiTokenRecord): ApiTokenView {
    const lastUsedMs = this.lastUsedMs.get(record.id);
    return {
      id: record.id,
      name: record.name,
      role: record.role,
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      lastUsedAt: lastUsedMs === undefined ? null : new Date(lastUsedMs).toISOString(),
      expired: record.expiresAt !== null && this.clock.nowMs() >= Date.parse(record.expiresAt),
    };
  }
}
