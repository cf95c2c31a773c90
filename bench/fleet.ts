#!/usr/bin/env node
/**
 * `npm run bench:fleet -- --agents N [--replicas R] [--heartbeat-ms H] [--duration-s S] ...`
 *
 * The fleet simulator and its raw baseline, measured in one run: the real hub as its own process
 * (node dist/hub/main.js, temp data dir, 127.0.0.1) and N real agents (agent/agent.ts over the
 * simulated container runtime) in several agent processes; and a bare `ws` server that takes the
 * same N connections and parses the same frames, so hub figures read as hub / baseline. Measures,
 * never asserts: prints a table, appends it to docs/benchmarks.md, optionally writes JSON.
 *
 * Bounded: every wait has a deadline, the whole run has one (--timeout-s), and whatever happens
 * every child process is killed by pid and the temp dir removed.
 *
 * This file runs the phases in order; each phase is a file in bench/fleet/ (baseline, connect,
 * idle, burst, placement, api, restart, failover, final counts, cold start), sharing one FleetRun
 * (bench/fleet/run.ts).
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FleetFigures } from './fleet-figures.js';
import { DOC_HEADER, formatReport, formatRunsSummary } from './fleet-report.js';
import { apiLatency } from './fleet/api.js';
import { baseline } from './fleet/baseline.js';
import { hubBurst } from './fleet/burst.js';
import { coldStart } from './fleet/cold-start.js';
import { connect, join } from './fleet/connect.js';
import { failover } from './fleet/failover.js';
import { finalCounts } from './fleet/final-counts.js';
import { idleCpu } from './fleet/idle.js';
import { HELP, parseOptions, type Options } from './fleet/options.js';
import { placement } from './fleet/placement.js';
import { restart } from './fleet/restart.js';
import { FleetRun } from './fleet/run.js';
import { log } from './fleet/util.js';

/** The phases in order; a phase a later one depends on ends the run when it fails. */
async function runPhases(run: FleetRun): Promise<void> {
  const { opts } = run;
  await run.setup();
  if (!opts.skip.has('baseline')) await run.step('baseline', () => baseline(run));
  await run.configureHub();
  if (!(await run.step('hub start', () => run.startHub()))) return;
  if (!(await run.step('join', () => join(run)))) return;
  if (!(await run.step('connect', () => run.profiled('connect', () => connect(run))))) return;
  await run.step('idle', () =>
    run.profiled('idle', async () => {
      run.figures.hub.idleCpu = await idleCpu(run);
    }),
  );
  if (!opts.skip.has('burst')) await run.step('burst', () => run.profiled('burst', () => hubBurst(run)));
  if (!opts.skip.has('placement')) run.placed = await run.step('placement', () => run.profiled('placement', () => placement(run)));
  if (!opts.skip.has('api')) await run.step('api', () => run.profiled('api', () => apiLatency(run)));
  if (run.placed) {
    await run.step('idle with replicas', async () => {
      run.figures.hub.idleCpuWithReplicas = await idleCpu(run);
    });
  }
  let restarted = true;
  if (!opts.skip.has('restart')) restarted = await run.step('restart', () => restart(run));
  if (opts.skip.has('failover')) run.figures.hub.failover = { measured: false, reason: 'skipped' };
  else if (!run.hubSupportsLostAfter) run.figures.hub.failover = { measured: false, reason: 'the hub has no --lost-after-ms flag yet' };
  else if (!run.placed) run.figures.hub.failover = { measured: false, reason: 'no replicas placed' };
  else if (!restarted) run.figures.hub.failover = { measured: false, reason: 'the fleet did not recover from the hub restart' };
  else await run.step('failover', () => run.profiled('failover', () => failover(run)));
  await run.step('final counts', () => finalCounts(run));
  // Last: it stops every agent and starts the hub anew, which nothing after could measure on.
  const hubRunning = run.hub !== null && run.hub.child.exitCode === null && run.hub.child.signalCode === null;
  if (opts.skip.has('cold-start')) run.figures.hub.coldStart = { measured: false, reason: 'skipped' };
  else if (!run.placed) run.figures.hub.coldStart = { measured: false, reason: 'no replicas placed' };
  else if (!hubRunning) run.figures.hub.coldStart = { measured: false, reason: 'the hub was not running' };
  else {
    run.figures.hub.coldStart = { measured: false, reason: 'the cold start failed (see the errors)' };
    await run.step('cold start', () => coldStart(run));
  }
}

/** One run: its phases, then its cleanup whatever happened, within --timeout-s. */
async function runOnce(opts: Options, index: number): Promise<{ figures: FleetFigures; failed: boolean }> {
  const bench = new FleetRun(opts);
  current = bench;
  if (opts.runs > 1) log(`run ${index + 1} of ${opts.runs}`);
  const watchdog = setTimeout(() => abort(`the run's deadline of ${opts.timeoutS} s passed`, 3), opts.timeoutS * 1000);
  watchdog.unref();
  let failed = false;
  try {
    await runPhases(bench);
  } catch (error) {
    failed = true;
    bench.figures.errors.push(`run: ${(error as Error).message}`);
  } finally {
    await bench.cleanup();
  }
  clearTimeout(watchdog);
  return { figures: bench.figures, failed };
}

/** The run in progress, whose processes an interrupt or a deadline kills. */
let current: FleetRun | null = null;
let exiting = false;

function abort(why: string, code: number): void {
  if (exiting) return;
  exiting = true;
  log(`${why} (in phase ${current?.phase ?? 'setup'}); killing the run's processes`);
  current?.cleanupSync();
  process.exit(code);
}

function appendToDoc(doc: string, text: string): void {
  mkdirSync(path.dirname(doc), { recursive: true });
  if (!existsSync(doc)) writeFileSync(doc, DOC_HEADER);
  appendFileSync(doc, `\n${text}\n`);
  log(`appended to ${path.relative(process.cwd(), doc)}`);
}

async function main(): Promise<void> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:fleet: ${(error as Error).message}\n${HELP}`);
    process.exit(2);
  }
  process.on('SIGINT', () => abort('interrupted', 130));
  process.on('SIGTERM', () => abort('terminated', 143));
  process.on('exit', () => current?.cleanupSync());

  // Back to back, each on a fresh hub, data dir and agent processes: a target counts as held only
  // when it held in every run, not in a good one.
  const runs: FleetFigures[] = [];
  let anyFailed = false;
  for (let i = 0; i < opts.runs; i++) {
    const { figures, failed } = await runOnce(opts, i);
    anyFailed ||= failed;
    runs.push(figures);
    const report = formatReport(figures);
    process.stdout.write(`\n${report}\n`);
    if (opts.doc) appendToDoc(opts.doc, report);
  }
  if (opts.runs > 1) {
    const summary = formatRunsSummary(runs);
    process.stdout.write(`\n${summary}\n`);
    if (opts.doc) appendToDoc(opts.doc, summary);
  }
  // One run's figures as an object (as before --runs existed); several as an array of them.
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify(opts.runs === 1 ? runs[0] : runs, null, 2)}\n`);
  process.exitCode = anyFailed ? 1 : 0;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:fleet: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
