/** The fleet benchmark's command line: its options, their defaults and checks. */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../processes.js';

export const HELP = `Usage: npm run bench:fleet -- --agents N [options]

  --agents N              simulated agents (real agent code, simulated container engine)
  --replicas R            replicas of the "bench" service to place (default 10 x N, at most 100000)
  --heartbeat-ms H        the hub's heartbeat interval (default 5000)
  --duration-s S          length of each idle-heartbeating window that hub CPU is measured over (default 20)
  --processes P           agent processes (default: one per 2500 agents)
  --lost-after-ms L       the hub's --lost-after-ms, also used for the failover figure (default: the hub's own default)
  --burst-frames F        heartbeat frames sent in the throughput burst, over all connections (default 200000)
  --settle-ms M           pause after connecting before RSS is read (default 2000)
  --quiet-s Q             before an idle window, wait (up to 120 s) for Q s with no store write and
                          no agent reconnecting (default 5; 0 does not wait)
  --api-requests K        sequential GETs and as many PUTs for the API latency (default 300)
  --join-concurrency C    POST /v1/join calls in flight (default 32)
  --skip LIST             comma-separated phases to leave out: baseline, burst, placement, api, restart, failover,
                          cold-start
  --source-addresses      bind each agent process to its own 127.0.0.x (default: on above 15000 agents)
  --no-gc                 no inspector: RSS without a forced GC
  --profile DIR           CPU-profile the hub per phase (inspector) into DIR; figures then carry the overhead
  --profile-phases LIST   only these: connect, idle, burst, placement, api, reconnect, failover (default all)
  --hub-log-level LEVEL   (default warn: the hub's log goes to a file in the temp dir)
  --hub-env LIST          comma-separated NAME=VALUE set for the hub process only, not the baseline
                          (allocator experiments: MALLOC_TRIM_THRESHOLD_=131072)
  --timeout-s T           each run's deadline (default 900)
  --runs N                run the whole benchmark N times back to back, each on a fresh hub and
                          fleet; prints each run's table, then whether each target held in every
                          run (default 1; with --json, N > 1 writes an array of the runs' figures)
  --work-dir DIR          where the temp dir is made (default the OS temp dir)
  --json FILE             also write the figures as JSON
  --doc FILE              the report is appended here (default docs/benchmarks.md)
  --no-doc                do not append to the doc
`;

export const AGENTS_PER_PROCESS = 2500;
export const SPEC_MAX_REPLICAS = 100_000;

export interface Options {
  agents: number;
  replicas: number;
  heartbeatMs: number;
  durationS: number;
  processes: number;
  lostAfterMs: number;
  burstFrames: number;
  apiRequests: number;
  settleMs: number;
  quietS: number;
  joinConcurrency: number;
  skip: Set<string>;
  sourceAddresses: boolean;
  gc: boolean;
  profileDir: string | null;
  profilePhases: Set<string> | null;
  hubLogLevel: string;
  /** Set for the hub process only (--hub-env). */
  hubEnv: Record<string, string>;
  timeoutS: number;
  runs: number;
  workDir: string;
  json: string | null;
  doc: string | null;
  command: string;
}

export function parseOptions(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string' },
      replicas: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'duration-s': { type: 'string' },
      processes: { type: 'string' },
      'lost-after-ms': { type: 'string' },
      'burst-frames': { type: 'string' },
      'api-requests': { type: 'string' },
      'settle-ms': { type: 'string' },
      'quiet-s': { type: 'string' },
      'join-concurrency': { type: 'string' },
      skip: { type: 'string' },
      'source-addresses': { type: 'boolean' },
      'no-gc': { type: 'boolean' },
      profile: { type: 'string' },
      'profile-phases': { type: 'string' },
      'hub-log-level': { type: 'string' },
      'hub-env': { type: 'string' },
      'timeout-s': { type: 'string' },
      runs: { type: 'string' },
      'work-dir': { type: 'string' },
      json: { type: 'string' },
      doc: { type: 'string' },
      'no-doc': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (v.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const int = (name: string, text: string | undefined, fallback: number | null, min: number): number => {
    if (text === undefined) {
      if (fallback === null) throw new Error(`--${name} is required`);
      return fallback;
    }
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${text}"`);
    return n;
  };
  const agents = int('agents', v.agents, null, 1);
  const heartbeatMs = int('heartbeat-ms', v['heartbeat-ms'], 5000, 100);
  const skip = new Set((v.skip ?? '').split(',').filter(Boolean));
  for (const s of skip) {
    if (!['baseline', 'burst', 'placement', 'api', 'restart', 'failover', 'cold-start'].includes(s)) throw new Error(`unknown phase "${s}" in --skip`);
  }
  return {
    agents,
    replicas: Math.min(SPEC_MAX_REPLICAS, int('replicas', v.replicas, 10 * agents, 0)),
    heartbeatMs,
    durationS: int('duration-s', v['duration-s'], 20, 1),
    processes: int('processes', v.processes, Math.ceil(agents / AGENTS_PER_PROCESS), 1),
    lostAfterMs: int('lost-after-ms', v['lost-after-ms'], 0, 1000),
    burstFrames: int('burst-frames', v['burst-frames'], 200_000, 1),
    apiRequests: int('api-requests', v['api-requests'], 300, 1),
    settleMs: int('settle-ms', v['settle-ms'], 2000, 0),
    quietS: int('quiet-s', v['quiet-s'], 5, 0),
    joinConcurrency: int('join-concurrency', v['join-concurrency'], 32, 1),
    skip,
    sourceAddresses: v['source-addresses'] ?? agents > 15_000,
    gc: !v['no-gc'],
    profileDir: v.profile ? path.resolve(v.profile) : null,
    profilePhases: v['profile-phases'] ? new Set(v['profile-phases'].split(',')) : null,
    hubLogLevel: v['hub-log-level'] ?? 'warn',
    hubEnv: envList(v['hub-env'] ?? ''),
    timeoutS: int('timeout-s', v['timeout-s'], 900, 10),
    runs: int('runs', v.runs, 1, 1),
    workDir: path.resolve(v['work-dir'] ?? os.tmpdir()),
    json: v.json ? path.resolve(v.json) : null,
    doc: v['no-doc'] ? null : path.resolve(v.doc ?? path.join(repoRoot, 'docs', 'benchmarks.md')),
    command: `npm run bench:fleet -- ${argv.join(' ')}`,
  };
}

/** `A=1,B=2` as an object; a part without a name and `=` is refused. */
function envList(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const at = part.indexOf('=');
    if (at <= 0) throw new Error(`--hub-env: "${part}" is not NAME=VALUE`);
    env[part.slice(0, at)] = part.slice(at + 1);
  }
  return env;
}
