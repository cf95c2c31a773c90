import { addressKey } from '../agents/handshake-admission.js';

/** What was refused: an API token at the HTTP API, a join token at /v1/join, a node credential at the agent upgrade. */
export type AuthKind = 'api_token' | 'join_token' | 'node_credential';

export const AUTH_KINDS: readonly AuthKind[] = ['api_token', 'join_token', 'node_credential'];

export interface AuthFailureLimits {
  /** Failed authentications an address may make per window before its answers are slowed down. */
  allowance: number;
  /** Failures past the allowance, within the window, that are only slowed down; the next one starts a refusal. */
  slowedFailures: number;
  /** The window failures are counted over. */
  windowMs: number;
  /** How long a failed answer past the allowance is held before it goes out. */
  slowDownMs: number;
  /** How long an address's failed authentications are refused (429) once it has used its slowed ones. */
  refuseForMs: number;
  /** Addresses remembered at once; past it the oldest is forgotten. */
  maxAddresses: number;
}

export const DEFAULT_AUTH_FAILURE_LIMITS: AuthFailureLimits = {
  allowance: 10,
  slowedFailures: 10,
  windowMs: 60_000,
  slowDownMs: 500,
  refuseForMs: 60_000,
  maxAddresses: 10_000,
};

/**
 * What to do with a failed authentication: answer it now, answer it after `delayMs`, or refuse it
 * (429) for `retryAfterS`; `burstStarted` on the one refusal that starts a burst (the one to log).
 */
export type FailureVerdict =
  | { action: 'answer' }
  | { action: 'slow'; delayMs: number }
  | { action: 'refuse'; retryAfterS: number; burstStarted: boolean };

/** What is kept per address: a window's start, its count and a deadline. */
interface AddressEntry {
  windowStartMs: number;
  failures: number;
  /** 0: not refused. */
  refusedUntilMs: number;
}

/**
 * Failed authentications per client address (an IPv6 /64 counts as one, as for handshakes), so
 * that one client cannot try credentials at the hub's full speed, nor fill its logs: past a small
 * allowance its failures are answered late, then refused for a while. Only failures are seen
 * here: a right credential is let through even from a refused address (the credentials are 256
 * random bits, so refusing them would stop no guess, while one bad client behind a shared NAT
 * address would lock out every good one behind it).
 *
 * Bounded: at most `maxAddresses` entries (the oldest forgotten first), and each forgotten once
 * its window and refusal are over. Pure: time comes from `nowMs`.
 */
export class AuthFailures {
  private readonly byAddress = new Map<string, AddressEntry>();
  /**
   * The remembered addresses in the order first seen, a ring of maxAddresses: forgetting the
   * oldest is O(1). (Deleting a Map's first key again and again leaves holes that the next
   * look-up of its first key walks over: 15 µs a failure at the bound, against 2 to 3 µs in all
   * with the ring, bench/robustness/auth-failure-table.ts.)
   */
  private readonly order: Array<string | undefined>;
  private head = 0;
  readonly failuresByKind: Record<AuthKind, number> = { api_token: 0, join_token: 0, node_credential: 0 };
  readonly refusedByKind: Record<AuthKind, number> = { api_token: 0, join_token: 0, node_credential: 0 };

  /**
   * `onBurst` hears of each refusal that starts a burst (an address that has just used its slowed
   * failures), so that the log gets one line per burst, never one per refused request.
   */
  constructor(
    readonly limits: AuthFailureLimits,
    private readonly nowMs: () => number,
    private readonly onBurst: (burst: { address: string; kind: AuthKind; failures: number; refuseForMs: number }) => void = () => undefined,
  ) {
    for (const [name, value] of Object.entries(limits)) {
      if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`auth failure limit ${name} must be a number >= 0, got ${value}`);
    }
    if (!Number.isInteger(limits.maxAddresses) || limits.maxAddresses < 1) {
      throw new RangeError(`auth failure limit maxAddresses must be an integer of at least 1, got ${limits.maxAddresses}`);
    }
    this.order = new Array<string | undefined>(limits.maxAddresses);
  }

  /** Addresses remembered now. */
  get addressCount(): number {
    return this.byAddress.size;
  }

  /** Counts a failed authentication from `remoteAddress`, and says how to answer it. */
  failed(remoteAddress: string | undefined, kind: AuthKind): FailureVerdict {
    const now = this.nowMs();
    this.forgetExpired(now);
    const key = addressKey(remoteAddress);
    this.failuresByKind[kind]++;
    let entry = this.byAddress.get(key);
    if (entry && entry.refusedUntilMs > now) {
      this.refusedByKind[kind]++;
      return { action: 'refuse', retryAfterS: retryAfterS(entry.refusedUntilMs - now), burstStarted: false };
    }
    if (entry && (entry.refusedUntilMs > 0 || now - entry.windowStartMs >= this.limits.windowMs)) {
      // A refusal served, or a quiet window: the address starts again with its allowance.
      entry.windowStartMs = now;
      entry.failures = 0;
      entry.refusedUntilMs = 0;
    }
    if (!entry) {
      if (this.byAddress.size >= this.limits.maxAddresses) this.forgetOldest();
      entry = { windowStartMs: now, failures: 0, refusedUntilMs: 0 };
      this.byAddress.set(key, entry);
      this.order[(this.head + this.byAddress.size - 1) % this.order.length] = key;
    }
    entry.failures++;
    if (entry.failures <= this.limits.allowance) return { action: 'answer' };
    if (entry.failures <= this.limits.allowance + this.limits.slowedFailures) return { action: 'slow', delayMs: this.limits.slowDownMs };
    entry.refusedUntilMs = now + this.limits.refuseForMs;
    this.refusedByKind[kind]++;
    this.onBurst({ address: key, kind, failures: entry.failures, refuseForMs: this.limits.refuseForMs });
    return { action: 'refuse', retryAfterS: retryAfterS(this.limits.refuseForMs), burstStarted: true };
  }

  /**
   * Forgets entries from the oldest while their window and refusal are over. It stops at the first
   * still live, so an expired entry behind it waits for a later call or for the bound: amortized
   * O(1) per call, and never more than maxAddresses either way.
   */
  private forgetExpired(now: number): void {
    while (this.byAddress.size > 0) {
      const entry = this.byAddress.get(this.order[this.head]!)!;
      if (now < Math.max(entry.windowStartMs + this.limits.windowMs, entry.refusedUntilMs)) return;
      this.forgetOldest();
    }
  }

  private forgetOldest(): void {
    this.byAddress.delete(this.order[this.head]!);
    this.order[this.head] = undefined;
    this.head = (this.head + 1) % this.order.length;
  }
}

/** Whole seconds, at least one: Retry-After carries no fractions. */
function retryAfterS(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
