/**
 * The fleet benchmark (bench/fleet.ts) at a small size, so the harness never rots: the real hub
 * process, 200 real agents in 2 agent processes, the bare-ws baseline, 2,000 replicas, a hub
 * restart and (when the hub has --lost-after-ms) a failover. It checks that every figure is
 * there and that the fleet did what it should; it never checks a timing, which would only measure
 * the machine the tests happen to run on.
 *
 * Runs the compiled harness (npm test builds first) in its own process group, so every process
 * it starts is killed even when the test fails or times out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { FleetFigures } from '../../bench/fleet-figures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const harness = path.join(root, 'dist', 'bench', 'fleet.js');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'tether-fleet-smoke-'));
let child: ChildProcess | null = null;

afterAll(() => {
  // The harness and everything it started share one process group: end them all at once.
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(workDir, { recursive: true, force: true });
});

const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

it('runs 200 agents in 2 processes through every phase and reports every figure', async () => {
  expect(existsSync(harness), `${harness} is missing: npm run build`).toBe(true);
  const json = path.join(workDir, 'figures.json');
  const args = [
    harness,
    '--agents', '200',
    '--processes', '2',
    '--replicas', '2000',
    '--heartbeat-ms', '1000',
    '--duration-s', '1',
    '--burst-frames', '10000',
    '--api-requests', '20',
    '--settle-ms', '300',
    '--quiet-s', '1',
    '--lost-after-ms', '3000',
    '--timeout-s', '100',
    '--work-dir', workDir,
    '--json', json,
    '--no-doc',
  ];
  let output = '';
  child = spawn(process.execPath, args, { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const code = await new Promise<number | null>((resolve) => child!.once('exit', (c) => resolve(c)));

  expect(code, output).toBe(0);
  const f = JSON.parse(readFileSync(json, 'utf8')) as FleetFigures;
  expect(f.errors, output).toEqual([]);

  // The baseline took every connection and every burst frame.
  expect(f.baseline?.connected).toBe(200);
  expect(f.baseline?.burst?.frames).toBe(10_000);
  expect(f.baseline?.burst?.missingPongs).toBe(0);
  expect(finite(f.baseline?.rssPerConnectionKiB)).toBe(true);
  expect(finite(f.baseline?.idleCpu?.pctOfCore)).toBe(true);

  // Every agent joined and said hello; the hub counts them all.
  expect(f.hub.joined).toBe(200);
  expect(f.hub.ready).toBe(200);
  expect(f.hub.connectedNodes).toBe(200);
  expect(finite(f.hub.connectS)).toBe(true);
  expect(finite(f.hub.rss?.perAgentKiB)).toBe(true);
  expect(finite(f.hub.idleCpu?.pctOfCore)).toBe(true);
  expect(f.hub.burst?.frames).toBe(10_000);
  expect(f.hub.burst?.missingPongs).toBe(0);

  // Every replica placed and running, the API answered, the store was written.
  expect(f.hub.placement?.running).toBe(2000);
  expect(f.hub.api?.get.n).toBe(20);
  expect(f.hub.api?.put.n).toBe(20);
  expect(f.hub.store?.writes).toBeGreaterThan(0);

  // After a SIGKILL and a restart every agent came back by itself, and every replica runs again.
  expect(f.hub.restart?.reconnected).toBe(200);
  expect(finite(f.hub.restart?.secondsFromKill)).toBe(true);
  expect(finite(f.hub.restart?.runningAgainS)).toBe(true);

  // Failover: measured where the hub supports it, otherwise said why not.
  if (f.hub.failover.measured) {
    expect(f.hub.failover.cutAgents).toBe(20);
    expect(f.hub.failover.replicasToMove).toBeGreaterThan(0);
    expect(finite(f.hub.failover.totalS)).toBe(true);
  } else {
    expect(f.hub.failover.reason).toMatch(/lost-after-ms/);
  }

  // The harness cleaned up after itself: none of its processes is left, and its temp dir is gone.
  expect(() => process.kill(-child!.pid!, 0)).toThrow();
  expect(readdirSync(workDir).filter((name) => name.startsWith('tether-bench-'))).toEqual([]);
}, 120_000);
