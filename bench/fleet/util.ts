/** Small helpers every phase of the fleet benchmark uses: rounding, waiting, latency, counts. */
import type { Latency } from '../fleet-figures.js';

export const MiB = 1024 * 1024;
export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const seconds = (fromMs: number) => round((performance.now() - fromMs) / 1000, 3);

export function log(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

export async function waitUntil<T>(what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (performance.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs / 1000} s${last ? ` (last error: ${last})` : ''}`);
    await sleep(intervalMs);
  }
}

export function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
  return { n: sorted.length, p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(sorted[sorted.length - 1] ?? NaN) };
}

export function mergeCounts(parts: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts) for (const [k, n] of Object.entries(p)) out[k] = (out[k] ?? 0) + n;
  return out;
}

export function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(after)) if (n - (before[k] ?? 0) > 0) out[k] = n - (before[k] ?? 0);
  return out;
}

/** Seconds until given fractions of the agents were back, filled in as a wait polls. */
export class Curve {
  private readonly marks = new Map<number, number>();
  constructor(
    private readonly total: number,
    private readonly startMs: number,
    private readonly fractions = [0.5, 0.9, 0.99, 1],
  ) {}
  see(count: number): void {
    for (const f of this.fractions) {
      if (!this.marks.has(f) && count >= Math.ceil(f * this.total)) this.marks.set(f, round((performance.now() - this.startMs) / 1000, 2));
    }
  }
  result(): Record<string, number | null> {
    return Object.fromEntries(this.fractions.map((f) => [`${f * 100}%`, this.marks.get(f) ?? null]));
  }
}
