import { parseDuration } from '../spec/duration.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Shorter is a typo more likely than a wish: a token that dies before it is handed over. */
const MIN_TTL_MS = 60_000;
/** Longer is "forever" in disguise: leave the ttl out for that, so that the list says so. */
const MAX_TTL_MS = 3650 * DAY_MS;

/**
 * An API token's lifetime as written in a request: a spec duration ("12h", "90m") or whole days
 * ("30d"), which spec durations have no unit for and tokens are mostly counted in.
 */
export function parseTokenTtl(text: string): { ok: true; ms: number } | { ok: false; error: string } {
  const days = /^(\d{1,5})d$/.exec(text);
  const parsed = days ? { ok: true as const, ms: Number(days[1]) * DAY_MS } : parseDuration(text);
  if (!parsed.ok) return { ok: false, error: `ttl: ${parsed.error}, or whole days ("30d")` };
  if (parsed.ms < MIN_TTL_MS) return { ok: false, error: `ttl: "${text}" is shorter than a minute` };
  if (parsed.ms > MAX_TTL_MS) return { ok: false, error: `ttl: "${text}" is longer than 3650d; leave ttl out for a token that lasts until revoked` };
  return { ok: true, ms: parsed.ms };
}
