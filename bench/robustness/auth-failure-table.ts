/**
 * What failed authentications cost the hub's memory and time: one address failing without end,
 * then failures from many distinct addresses (IPv4 and IPv6 /64s), against the default limits.
 * The table must stay at its bound (10,000 addresses) whatever comes.
 *
 * Run: node --expose-gc dist/bench/robustness/auth-failure-table.js
 * Prints one JSON line.
 */
import { AuthFailures, DEFAULT_AUTH_FAILURE_LIMITS } from '../../hub/auth/auth-failures.js';

const ONE_ADDRESS_FAILURES = 200_000;
const DISTINCT_ADDRESSES = 500_000;

const gc = (globalThis as { gc?: () => void }).gc;
function heapBytes(): number {
  gc?.();
  return process.memoryUsage().heapUsed;
}

// A clock that moves 1 ms per failure: the flood spans minutes of windows and refusals.
let nowMs = 0;
const table = new AuthFailures(DEFAULT_AUTH_FAILURE_LIMITS, () => nowMs);
const heapBefore = heapBytes();

const verdicts = { answer: 0, slow: 0, refuse: 0 };
let started = performance.now();
for (let i = 0; i < ONE_ADDRESS_FAILURES; i++) {
  nowMs++;
  verdicts[table.failed('203.0.113.7', 'api_token').action]++;
}
const oneAddressNsPerFailure = ((performance.now() - started) * 1e6) / ONE_ADDRESS_FAILURES;

let peakAddresses = 0;
started = performance.now();
for (let i = 0; i < DISTINCT_ADDRESSES; i++) {
  // Distinct addresses arrive far faster than windows end: the bound, not expiry, holds them.
  const address = i % 2 === 0 ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
  table.failed(address, 'node_credential');
  peakAddresses = Math.max(peakAddresses, table.addressCount);
}
const distinctNsPerFailure = ((performance.now() - started) * 1e6) / DISTINCT_ADDRESSES;
const heapAtBound = heapBytes();

// Past every window and refusal, the next failure forgets them all but its own.
nowMs += DEFAULT_AUTH_FAILURE_LIMITS.windowMs + DEFAULT_AUTH_FAILURE_LIMITS.refuseForMs;
table.failed('198.51.100.1', 'join_token');

console.log(
  JSON.stringify({
    bench: 'auth-failure-table',
    gcExposed: gc !== undefined,
    oneAddress: { failures: ONE_ADDRESS_FAILURES, ...verdicts, nsPerFailure: Math.round(oneAddressNsPerFailure) },
    distinctAddresses: DISTINCT_ADDRESSES,
    peakAddresses,
    distinctNsPerFailure: Math.round(distinctNsPerFailure),
    heapAtBoundBytes: heapAtBound - heapBefore,
    bytesPerAddress: Math.round((heapAtBound - heapBefore) / peakAddresses),
    addressesAfterExpiry: table.addressCount,
  }),
);
