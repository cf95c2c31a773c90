#!/usr/bin/env node
/**
 * How soon a killed container runs again: a replica of the agent's reconcile loop (in process, on
 * the real Docker engine) next to a plain container made as `docker run --restart unless-stopped`
 * would make it, the anchor. Each round kills every subject at once, two ways:
 *   - `docker kill` (through the API): the engine counts it as stopped by a user, so its restart
 *     policy leaves it exited; only the agent brings its replica back;
 *   - SIGKILL to the container's init process from the host (what a crash or the OOM killer
 *     does): the engine's restart policy restarts it.
 * The delay is the engine's own clock from the `die` event to the next `start` event; for the
 * agent's replica also the part that is the agent's (die event to its start call), the rest being
 * the engine's start. Subjects are killed one at a time, each at least --gap-ms after its last
 * kill, so the engine's restart backoff (which doubles while a container lives under 10 s) is back
 * at its start every round.
 *
 *   node dist/bench/robustness/kill-restart.js [--rounds 10] [--gap-ms 11000]
 *
 * Needs the engine and the registry of scripts/test-env.sh (image 127.0.0.1:5000/busybox:1) and
 * root (the host kill). Prints one JSON line; removes what it made (label io.tether.bench=<run>).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';
import DockerModem from 'docker-modem';
import { ReconcileLoop } from '../../agent/reconciler/reconcile-loop.js';
import { DockerRuntime, JsonLineReader } from '../../agent/runtime/docker-runtime.js';
import { containerSpecHash, type ContainerSpec } from '../../shared/container-spec.js';
import type { ReplicaReport } from '../../shared/protocol.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    'gap-ms': { type: 'string', default: '11000' },
    image: { type: 'string', default: '127.0.0.1:5000/busybox:1' },
  },
});
const ROUNDS = Math.min(50, Math.max(1, Number(values.rounds)));
const GAP_MS = Math.min(60_000, Math.max(1_000, Number(values['gap-ms'])));
const IMAGE = values.image!;
/** A subject not running again this long after its kill counts as not restarted. */
const GIVE_UP_MS = 5_000;
/** The whole run, whatever happens. */
const DEADLINE_MS = ROUNDS * 4 * (GAP_MS + GIVE_UP_MS) + 60_000;

const RUN = `kr-${randomUUID().slice(0, 8)}`;
const BENCH_LABEL = 'io.tether.bench';
const COMMAND = ['/bin/sleep', '3600'];

const modem = new DockerModem({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
function call<T>(method: string, path: string, options?: DockerModem.DialOptions['options'], isStream = false): Promise<T> {
  return new Promise<T>((resolve, reject) =>
    modem.dial({ method, path, options, isStream, statusCodes: { 200: true, 201: true, 204: true, 304: true } }, (err, res) =>
      err ? reject(err) : resolve(res as T),
    ),
  );
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (text: string) => process.stderr.write(`[kill-restart ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

type KillKind = 'docker-kill' | 'host-sigkill';
interface Subject {
  name: string;
  id: string;
  kill: KillKind;
  /** Engine time (ns) of the die not yet followed by a start, while a round measures. */
  diedAtNs: bigint | null;
  delaysMs: number[];
  /** Agent replicas: die event to the agent's start call. */
  reactionsMs: number[];
  lastKillAtMs: number;
  notRestarted: number;
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    log('deadline passed, giving up');
    void cleanup().finally(() => process.exit(2));
  }, DEADLINE_MS);
  deadline.unref();

  const runtime = new DockerRuntime();
  // When the agent asks for a start, to tell its share of the delay from the engine's.
  const startCalledAtMs = new Map<string, number>();
  const engineStart = runtime.startContainer.bind(runtime);
  runtime.startContainer = (id: string) => {
    startCalledAtMs.set(id, Date.now());
    return engineStart(id);
  };
  if (!(await runtime.hasImage(IMAGE))) await runtime.pullImage(IMAGE, null);

  // The agent: its reconcile loop with the defaults the agent runs with (10 s resync).
  const reports = new Map<string, ReplicaReport>();
  const quiet = { info() {}, warn() {}, error() {} };
  const loop = new ReconcileLoop({
    nodeId: RUN,
    runtime,
    publishAddress: null,
    logger: quiet,
    onReport: (changed) => changed.forEach((r) => reports.set(r.replicaId, r)),
    onApplied: () => {},
  });
  await loop.start();
  const specOf = (): ContainerSpec => ({
    image: IMAGE,
    command: COMMAND,
    env: {},
    ports: [],
    resources: { cpus: null, memoryMB: null },
    labels: { [BENCH_LABEL]: RUN },
    registryAuth: null,
  });
  const replicaIds = ['docker-kill', 'host-sigkill'] as const;
  loop.setTarget(
    1,
    replicaIds.map((replicaId) => ({ replicaId, service: 'bench', specHash: containerSpecHash(specOf()), container: specOf() })),
  );
  const waitUntil = async (check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (await check()) return true;
      await sleep(20);
    }
    return false;
  };
  if (!(await waitUntil(() => replicaIds.every((id) => reports.get(id)?.state === 'running'), 30_000))) throw new Error('replicas not running');

  // The anchor: plain containers with the same image, command and init, restart policy unless-stopped.
  const anchors: Record<KillKind, string> = { 'docker-kill': '', 'host-sigkill': '' };
  for (const kill of replicaIds) {
    const { Id } = await call<{ Id: string }>('POST', '/containers/create?', {
      _query: { name: `${RUN}-anchor-${kill}` },
      _body: { Image: IMAGE, Cmd: COMMAND, Labels: { [BENCH_LABEL]: RUN }, HostConfig: { RestartPolicy: { Name: 'unless-stopped' }, Init: true } },
    });
    await call('POST', `/containers/${Id}/start`);
    anchors[kill] = Id;
  }

  const subjects: Subject[] = [
    ...replicaIds.map((kill) => ({ name: `agent/${kill}`, id: reports.get(kill)!.containerId!, kill })),
    ...replicaIds.map((kill) => ({ name: `anchor/${kill}`, id: anchors[kill], kill })),
  ].map((s) => ({ ...s, diedAtNs: null, delaysMs: [], reactionsMs: [], notRestarted: 0, lastKillAtMs: 0 }));
  const byId = new Map(subjects.map((s) => [s.id, s]));

  // The engine's own record of die and start, with its nanosecond clock.
  const events = await call<IncomingMessage>(
    'GET',
    '/events?',
    { filters: { type: ['container'], label: [`${BENCH_LABEL}=${RUN}`], event: ['die', 'start'] } },
    true,
  );
  const reader = new JsonLineReader();
  events.setEncoding('utf8');
  events.on('error', () => {});
  events.on('data', (chunk: string) =>
    reader.push(
      chunk,
      (v) => {
        const e = v as { Action?: string; Actor?: { ID?: string }; timeNano?: number };
        const s = e.Actor?.ID ? byId.get(e.Actor.ID) : undefined;
        if (!s || typeof e.timeNano !== 'number') return;
        const atNs = BigInt(e.timeNano);
        if (e.Action === 'die') s.diedAtNs = atNs;
        else if (e.Action === 'start' && s.diedAtNs !== null) {
          s.delaysMs.push(Number(atNs - s.diedAtNs) / 1e6);
          // Engine and agent share the host clock.
          const calledAtMs = startCalledAtMs.get(s.id);
          const diedAtMs = Number(s.diedAtNs / 1_000_000n);
          if (calledAtMs !== undefined && calledAtMs >= diedAtMs) s.reactionsMs.push(calledAtMs - diedAtMs);
          s.diedAtNs = null;
        }
      },
      () => {},
    ),
  );
  await sleep(500);

  const running = async (id: string) =>
    (await call<{ State: { Status: string } }>('GET', `/containers/${id}/json`)).State.Status === 'running';
  let hostKillFailed: string | null = null;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const s of subjects) {
      await sleep(Math.max(500, s.lastKillAtMs + GAP_MS - Date.now()));
      const count = s.delaysMs.length;
      s.lastKillAtMs = Date.now();
      startCalledAtMs.delete(s.id);
      if (s.kill === 'docker-kill') await call('POST', `/containers/${s.id}/kill`);
      else {
        const pid = (await call<{ State: { Pid: number } }>('GET', `/containers/${s.id}/json`)).State.Pid;
        try {
          process.kill(pid, 'SIGKILL');
        } catch (err) {
          hostKillFailed = (err as Error).message;
        }
      }
      if (await waitUntil(() => s.delaysMs.length > count, GIVE_UP_MS)) continue;
      s.notRestarted++;
      s.diedAtNs = null;
      // Not back by itself: started by hand for the next round, outside the measurement.
      if (!(await running(s.id))) await call('POST', `/containers/${s.id}/start`);
      await waitUntil(() => running(s.id), 5_000);
    }
    log(`round ${round}: ${subjects.map((s) => `${s.name} ${s.delaysMs.at(-1)?.toFixed(0) ?? '-'} ms`).join(', ')}`);
  }
  await sleep(500); // the reports of the last restarts
  await loop.runOnce();
  events.destroy();
  await loop.stop();

  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const median = sorted.length === 0 ? null : sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
    const r = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
    return { n: xs.length, medianMs: r(median), maxMs: r(sorted.at(-1) ?? null) };
  };
  const result = {
    bench: 'kill-restart',
    rounds: ROUNDS,
    gapMs: GAP_MS,
    giveUpMs: GIVE_UP_MS,
    ...(hostKillFailed ? { hostKillFailed } : {}),
    subjects: Object.fromEntries(
      subjects.map((s) => [
        s.name,
        {
          restarted: s.delaysMs.length,
          notRestarted: s.notRestarted,
          dieToStart: stats(s.delaysMs),
          ...(s.reactionsMs.length ? { dieToAgentStartCall: stats(s.reactionsMs) } : {}),
        },
      ]),
    ),
    reportedRestarts: Object.fromEntries(replicaIds.map((id) => [`agent/${id}`, reports.get(id)?.restarts ?? null])),
    finalReportedStates: Object.fromEntries(replicaIds.map((id) => [`agent/${id}`, reports.get(id)?.state ?? null])),
  };
  await cleanup();
  clearTimeout(deadline);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function cleanup(): Promise<void> {
  const list = await call<Array<{ Id: string }>>('GET', '/containers/json?', { all: true, filters: { label: [`${BENCH_LABEL}=${RUN}`] } });
  await Promise.all(list.map((c) => call('DELETE', `/containers/${c.Id}?`, { force: true, v: true }).catch(() => {})));
}

main().catch(async (err: unknown) => {
  log(`failed: ${err instanceof Error ? err.stack : String(err)}`);
  await cleanup().catch(() => {});
  process.exit(1);
});
