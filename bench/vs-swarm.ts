#!/usr/bin/env node
/**
 * Tether beside Docker Swarm on the same engine, in one run: the same containers (same image, same
 * command, an init as PID 1 on both so that a stop is prompt) created, scaled, updated and rolled
 * back by each, and the raw engine's own time for the same creates (the Engine API straight,
 * RAW_PARALLEL calls at once) as the floor. Every time runs from the request to the moment the
 * engine lists all the wanted containers running (polled every 75 ms, the same for every side);
 * the median of TRIALS trials, each on a fresh service removed afterwards, the sides taking turns.
 *
 *   npm run build && node dist/bench/vs-swarm.js [--trials 3] [--monitor 2s] [--only "update image"] [--keep-logs]
 *
 * Starts a hub and one agent (loopback, temp dir), puts the engine in swarm mode for the run (and
 * stops if it already is: someone else's swarm is left alone), leaves it at the end, and removes
 * every container it made (all carry the run's label), also on an error, Ctrl-C, or the run's own
 * deadline. Prints one JSON line per workload, then a markdown table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { killAll } from './processes.js';
import { imageId, ping, removeLabelled } from './vs-swarm/engine.js';
import { formatTable, summarize, type WorkloadSummary } from './vs-swarm/report.js';
import { rawSide, swarmSide, tetherSide, type Side } from './vs-swarm/sides.js';
import { initSwarm, leaveSwarm } from './vs-swarm/swarm.js';
import { startTether, type Tether } from './vs-swarm/tether.js';
import { runTrial, type TrialResult, type WorkloadName } from './vs-swarm/trials.js';

const WORKLOADS: WorkloadName[] = ['create 50', 'scale 10 -> 30', 'update image', 'rollback'];
/** The raw engine has no updates: it is the floor for create and scale only. */
const RAW_WORKLOADS = new Set<WorkloadName>(['create 50', 'scale 10 -> 30']);

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '3' },
    monitor: { type: 'string', default: '2s' },
    only: { type: 'string' },
    /** Keep the run's directory (the hub's and the agent's logs) and say where it is. */
    'keep-logs': { type: 'boolean', default: false },
  },
});
const TRIALS = Math.min(5, Math.max(1, Number(values.trials) || 3));
/** Tether's `update.monitor` and Swarm's --update-monitor / --rollback-monitor alike (both default to 5s). */
const MONITOR = values.monitor!;
if (!/^\d+(ms|s)$/.test(MONITOR)) throw new Error(`--monitor must be like 2s or 500ms, got "${MONITOR}"`);
const PARALLELISM = 2;
const IMAGES = { old: 'tether-test/busybox:1', new: 'tether-test/busybox:2' };
/** Handles SIGTERM through the init: stops at once on both sides. */
const COMMAND = ['sleep', '3600'];
/** The update that fails: exits at once. */
const FAILING_COMMAND = ['false'];
const workloads = values.only === undefined ? WORKLOADS : WORKLOADS.filter((w) => w === values.only);
if (workloads.length === 0) throw new Error(`--only must be one of: ${WORKLOADS.join(', ')}`);

/** Trials stop here; what is left of the 15 minutes is for the clean-up. */
const TRIALS_DEADLINE_MS = 14 * 60_000;
/** The whole run, clean-up included, whatever happens. */
const HARD_DEADLINE_MS = 15 * 60_000;

const runId = `${process.pid}-${Date.now().toString(36)}`;
const RUN_LABEL = 'bench.vs-swarm.run';
const log = (text: string) => process.stderr.write(`[vs-swarm ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

const stop = new AbortController();
const trialsTimer = setTimeout(() => stop.abort(new Error(`the run's ${TRIALS_DEADLINE_MS / 60_000} minutes are up`)), TRIALS_DEADLINE_MS);
const hardTimer = setTimeout(() => {
  log('clean-up did not finish in time: exiting (containers labelled ' + `${RUN_LABEL}=${runId} may remain; docker swarm leave --force may be needed)`);
  process.exit(3);
}, HARD_DEADLINE_MS);
hardTimer.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping and cleaning up`);
    stop.abort(new Error(signal));
  });
}
process.on('exit', killAll);

async function main(): Promise<number> {
  // The machine may be shared: the load says how far the figures can be trusted.
  const loadAvgAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  await ping();
  const images = { ...IMAGES, oldId: await imageId(IMAGES.old), newId: await imageId(IMAGES.new) };
  const dir = mkdtempSync(path.join(tmpdir(), 'tether-vs-swarm-'));
  let tether: Tether | null = null;
  let inSwarm = false;
  const results = new Map<WorkloadName, Map<Side['name'], TrialResult[]>>();
  try {
    await initSwarm();
    inSwarm = true;
    log('swarm initialised');
    tether = await startTether(dir, runId);
    log(`hub and agent up (node ${tether.nodeId})`);
    const sides = [tetherSide(tether.api), swarmSide(), rawSide()];
    let serial = 0;
    const errors: string[] = [];
    // Trial by trial over every workload (the sides taking turns within each): should the run's
    // deadline cut it short, every workload has its first trials.
    trials: for (let trial = 1; trial <= TRIALS; trial++) {
      for (const name of workloads) {
        const bySide = results.get(name) ?? results.set(name, new Map()).get(name)!;
        for (const side of sides) {
          if (side.update === null && !RAW_WORKLOADS.has(name)) continue;
          if (stop.signal.aborted) break trials;
          const service = `vs-${runId.split('-')[0]}-${++serial}-${side.name}`;
          try {
            const result = await runTrial(name, {
              side,
              service,
              runLabels: { [RUN_LABEL]: runId },
              images,
              command: COMMAND,
              failingCommand: FAILING_COMMAND,
              parallelism: PARALLELISM,
              monitor: MONITOR,
              signal: stop.signal,
              tether: side.name === 'tether' ? tether : null,
            });
            log(`${name} #${trial} ${side.name}: ${result.seconds.toFixed(2)} s`);
            (bySide.get(side.name) ?? bySide.set(side.name, []).get(side.name)!).push(result);
          } catch (err) {
            if (stop.signal.aborted) break trials;
            // One trial that failed (a wait that timed out) costs its figure, not the run's.
            const message = `${name} #${trial} ${side.name}: ${err instanceof Error ? err.message : String(err)}`;
            errors.push(message);
            log(`failed: ${message}`);
          }
        }
      }
    }
    const complete = !stop.signal.aborted;
    if (!complete) log(`stopped early (${String(stop.signal.reason)}): the figures are of the trials done`);
    const load = os.loadavg().map((x) => Math.round(x * 100) / 100);
    const summaries: WorkloadSummary[] = [...results].map(([name, bySide]) => summarize(name, bySide, RAW_WORKLOADS.has(name)));
    const settings = { monitor: MONITOR, parallelism: PARALLELISM, trials: TRIALS, complete };
    for (const s of summaries) process.stdout.write(`${JSON.stringify({ ...s, ...settings, loadAvgAtStart, loadAvgAtEnd: load })}\n`);
    if (errors.length > 0) process.stdout.write(`${JSON.stringify({ errors })}\n`);
    process.stdout.write(`\n${formatTable(summaries, settings)}\n`);
    if (!complete || errors.length > 0) return 1;
    return 0;
  } finally {
    clearTimeout(trialsTimer);
    log('cleaning up');
    if (tether) await tether.stop().catch((err) => log(`stopping the hub and agent: ${String(err)}`));
    if (inSwarm) await leaveSwarm().then(() => log('left the swarm'), (err) => log(`docker swarm leave --force failed: ${String(err)}`));
    // The agent leaves its containers running when it stops, and leaving a swarm may leave task
    // containers: everything of this run goes by its label.
    const removed = await removeLabelled([`${RUN_LABEL}=${runId}`]).catch((err) => {
      log(`removing the run's containers: ${String(err)}`);
      return -1;
    });
    if (removed > 0) log(`removed ${removed} leftover container(s)`);
    if (values['keep-logs']) log(`kept the hub's and the agent's logs in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
