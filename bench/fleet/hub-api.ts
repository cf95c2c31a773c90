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

  async healthz(): Promise<{ connectedNodes: number }> {
    const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as { connectedNodes: number };
  }
}

/** The hub's service view; `?limit=0` leaves out the replica list and keeps the counts. */
export interface ServiceView {
  status: { desired: number; running: number; onDownNodes: number; handingOver: number; replicaPage: { total: number } };
}
