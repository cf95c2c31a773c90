/** API latency while the agents heartbeat: sequential GETs and changing PUTs of a small service, and GETs of the big one. */
import { BENCH_IMAGE } from '../fleet-messages.js';
import type { Latency } from '../fleet-figures.js';
import type { FleetRun } from './run.js';
import { latency } from './util.js';

export async function apiLatency(run: FleetRun): Promise<void> {
  const k = run.opts.apiRequests;
  const spec = (replicas: number) => ({ image: BENCH_IMAGE, command: ['/bin/sleep', '3600'], replicas });
  const created = await run.api.call('PUT', '/v1/services/probe', spec(1));
  if (created.status >= 300) throw new Error(`PUT /v1/services/probe: HTTP ${created.status}`);
  const gets: number[] = [];
  for (let i = 0; i < k; i++) {
    const res = await run.api.call('GET', '/v1/services/probe');
    if (res.status !== 200) throw new Error(`GET /v1/services/probe: HTTP ${res.status}`);
    gets.push(res.ms);
  }
  // Each PUT changes the spec (replicas 2, 1, 2, ...): a store write before the answer, and a
  // scheduling pass over every service after it.
  const puts: number[] = [];
  for (let i = 0; i < k; i++) {
    const res = await run.api.call('PUT', '/v1/services/probe', spec(2 - (i % 2)));
    if (res.status !== 200) throw new Error(`PUT /v1/services/probe: HTTP ${res.status}`);
    puts.push(res.ms);
  }
  let getBigService: Latency | null = null;
  if (run.placed) {
    // GETs of the big service as an operator sends them (the first page of 1,000 replicas and the counts).
    const bigGetMs: number[] = [];
    for (let i = 0; i < 5; i++) bigGetMs.push((await run.getService('bench', '')).ms);
    getBigService = latency(bigGetMs);
  }
  run.figures.hub.api = { get: latency(gets), put: latency(puts), getBigService };
}
