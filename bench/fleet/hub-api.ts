/** The hub's HTTP API as the fleet benchmark calls it (admin token, timings, retried GETs). */
import { sleep } from './util.js';

export class HubApi {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async call<T = any>(method: string, route: string, body?: unknown, timeoutMs = 120_000): Promise<{ status: number; body: T; ms: number }> {
    // A GET is retried when the connection itself fails (a keep-alive socket the hub closed as it
    // was reused, say); a figure is never taken from a retried request's time alone.
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const res = await fetch(`${this.url}${route}`, {
          method,
          headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        const ms = performance.now() - started;
        return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, ms };
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const text = `${method} ${route}: ${(error as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}`;
        if (method !== 'GET' || attempt >= 2 || (error as Error).name === 'TimeoutError') throw new Error(text);
        this.retries.push(text);
        await sleep(200);
      }
    }
  }

  /** Network-level failures that were retried, for the report. */
  readonly retries: string[] = [];

  /**
   * The hub's own store counters from /metrics (tether_store_writes_total and
   * tether_store_written_bytes_total): exact, unlike the observer's estimate in StoreWatch. They
   * count from the hub process's start; null when the hub does not serve them.
   */
  async storeCounters(): Promise<StoreCounters | null> {
    const res = await fetch(`${this.url}/metrics`, { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    if (!res.ok) return null;
    const writes = metricValue(text, 'tether_store_writes_total');
    const bytes = metricValue(text, 'tether_store_written_bytes_total');
    return writes === null || bytes === null ? null : { writes, bytes };
  }

  async healthz(): Promise<{ connectedNodes: number }> {
    const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as { connectedNodes: number };
  }
}

/** The hub's service view; `?limit=0` leaves out the replica list and keeps the counts. */
export interface ServiceView {
  status: { desired: number; running: number; onDownNodes: number; handingOver: number; replicaPage: { total: number } };
}

export interface StoreCounters {
  writes: number;
  bytes: number;
}

/** The value of an unlabelled metric in Prometheus text format, or null when it is not there. */
export function metricValue(text: string, name: string): number | null {
  const match = new RegExp(`^${name}(?:\\{\\})?\\s+(\\S+)`, 'm').exec(text);
  const value = match ? Number(match[1]) : NaN;
  return Number.isFinite(value) ? value : null;
}
