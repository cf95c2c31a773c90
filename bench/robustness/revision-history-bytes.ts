#!/usr/bin/env node
/**
 * What keeping a service's last 10 revisions costs on disk: the bytes the real store writes for a
 * placement pass (one replica moved) and for a spec change, for a service with no kept history and
 * one with the full 9 earlier revisions, and the size of the record as a whole-shard write holds
 * it. Records are built as hub/services.ts builds them (historyAfter); a placement pass copies the
 * record with new placements, as the reconcile loop does. Local files only, in a temp dir it
 * removes; PASSES passes of each kind.
 *
 *   node dist/bench/robustness/revision-history-bytes.js
 *
 * Prints one JSON line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { historyAfter, KEPT_REVISIONS } from '../../hub/revisions.js';
import type { NormalizedSpec } from '../../hub/spec/service-spec.js';
import type { Placement } from '../../hub/scheduler/types.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { ServiceRecord } from '../../hub/store/store.js';

const PASSES = 20;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const REPLICAS = 100;

/** About what an operator's spec holds: a command, a few env vars, ports, labels, a constraint, registry credentials. */
function spec(version: number): NormalizedSpec {
  return {
    image: `registry.example.com:5000/team/web-frontend:1.${version}.0`,
    command: ['/usr/local/bin/server', '--port', '8080', '--log-level', 'info'],
    env: { NODE_ENV: 'production', API_URL: 'https://api.example.com/v2', CACHE_TTL_S: '300', FEATURE_FLAGS: 'a,b,c', REGION: 'eu-west' },
    mode: 'replicated',
    replicas: REPLICAS,
    ports: [
      { containerPort: 8080, hostPort: 80, protocol: 'tcp' },
      { containerPort: 9090, hostPort: null, protocol: 'tcp' },
    ],
    resources: { cpus: 0.5, memoryMB: 256 },
    constraints: ['node.labels.role == edge'],
    labels: { team: 'frontend', tier: 'web', owner: 'ops@example.com' },
    registryAuth: { username: 'deploy-bot', password: 'a-long-registry-token-0123456789abcdef' },
    onNodeLost: 'reschedule',
    lostAfterMs: null,
  };
}

const placements = (movedIndex: number, to: string): Placement[] =>
  Array.from({ length: REPLICAS }, (_, i) => ({ replicaId: `web-${String(i).padStart(6, '0')}`, nodeId: i === movedIndex ? to : `node-${i % 50}`, pendingReason: null }));

/** A service record after `changes` spec changes, with the history the hub would have built. */
function recordAfter(changes: number): ServiceRecord {
  const now = new Date().toISOString();
  let record: ServiceRecord = { name: 'web', spec: spec(0), revision: 1, createdAt: now, updatedAt: now, placements: placements(-1, '') };
  for (let v = 1; v <= changes; v++) record = { ...record, spec: spec(v), revision: record.revision + 1, updatedAt: now, history: historyAfter(record) };
  return record;
}

async function measure(changes: number) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-revision-bytes-'));
  const store = new LowdbStore({ dir, serviceShards: 1, nodeShards: 1 });
  try {
    await store.open();
    let record = recordAfter(changes);
    await store.putService(record);
    const mainBytes = Buffer.byteLength(JSON.stringify({ ...record, placements: undefined }));
    const wholeBytes = Buffer.byteLength(JSON.stringify(record));

    // Bytes of each write: a change-log line as a rule, the whole shard when the log is compacted.
    const written = async (next: ServiceRecord): Promise<number> => {
      const before = store.stats().bytesWritten;
      await store.putService(next);
      return store.stats().bytesWritten - before;
    };
    const placementPass: number[] = [];
    for (let pass = 0; pass < PASSES; pass++) {
      record = { ...record, placements: placements(pass % REPLICAS, `node-moved-${pass}`) };
      placementPass.push(await written(record));
    }
    // Spec changes from here: the history of the "none" record fills up as they go, so only the
    // first one is a change of a record without history.
    const specChange: number[] = [];
    for (let pass = 0; pass < PASSES; pass++) {
      record = { ...record, spec: spec(1000 + pass), revision: record.revision + 1, updatedAt: new Date().toISOString(), history: historyAfter(record) };
      specChange.push(await written(record));
    }
    return {
      keptHistory: changes === 0 ? 0 : Math.min(changes, KEPT_REVISIONS - 1),
      mainBytes,
      wholeBytes,
      placementPassBytes: { median: median(placementPass), max: Math.max(...placementPass) },
      firstSpecChangeBytes: specChange[0],
      specChangeBytes: { median: median(specChange), max: Math.max(...specChange) },
    };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const specBytes = Buffer.byteLength(JSON.stringify(spec(1)));
const none = await measure(0);
const full = await measure(KEPT_REVISIONS - 1);
console.log(
  JSON.stringify({
    replicas: REPLICAS,
    passes: PASSES,
    specBytes,
    noHistory: none,
    fullHistory: full,
    placementPassExtraBytes: full.placementPassBytes.median - none.placementPassBytes.median,
    mainExtraBytes: full.mainBytes - none.mainBytes,
  }),
);
