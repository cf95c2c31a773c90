#!/usr/bin/env node
/**
 * `npm run bench:agent`: the footprint of the agent as installed (the bundle, node
 * dist/agent/tether-agent.js) on the real Docker engine, idle with a few containers, next to a
 * bare Node process holding one `ws` connection (bench/bare-ws-client.ts), all measured over the
 * same window. For the record, the same agent loaded from dist/agent/main.js and node_modules
 * runs beside it (its own node and containers), and a second bare process without the agent's
 * node flags. Needs the engine and the registry of scripts/test-env.sh; everything on loopback.
 * Measures, never asserts; appends to docs/benchmarks.md unless --no-doc.
 *
 * Bounded: a watchdog ends the run after settle + window + 300 s. Everything it starts is killed
 * by pid at the end, and the agents' containers (label io.tether.node-id=<node id>) are removed.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LABELS } from '../agent/runtime/container-runtime.js';
import { DockerRuntime } from '../agent/runtime/docker-runtime.js';
import { DOC_HEADER, machineLine } from './fleet-report.js';
import { distDir, freePort, killAll, repoRoot, startBaseline, startHub, startProgram, terminate, type NodeProc } from './processes.js';
import { CpuWindow, gitState, machineFacts, rssBytes } from './proc-stats.js';

const HELP = `Usage: npm run bench:agent -- [options]

  --containers N     containers each agent runs (default 5)
  --image IMAGE      (default 127.0.0.1:5000/busybox:1, from scripts/test-env.sh)
  --window-s S       the idle window measured (default 30)
  --settle-s S       wait after the containers run, before the window (default 10)
  --json FILE        also write the figures as JSON
  --doc FILE         the report is appended here (default docs/benchmarks.md)
  --no-doc           do not append to the doc
`;

/** The node flags install.sh's systemd unit runs the agent with: the agent is measured as installed. */
const AGENT_EXEC_ARGV = ['--max-semi-space-size=1'];
/** The agent as install.sh installs it: one file with its dependencies inside (scripts/bundle-agent.mjs). */
const BUNDLE = 'tether-agent.js';
/** Issue 14's targets for the bundled agent. */
const TARGET_RSS_RATIO = 1.3;
/** KubeEdge's EdgeCore, about 70 MB: in MiB. */
const TARGET_RSS_MIB = (70 * 1000 * 1000) / 1024 / 1024;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (text: string) => process.stderr.write(`[bench:agent ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

interface Sampled {
  meanMiB: number;
  maxMiB: number;
  cpuPct: number;
}

interface AgentFigures {
  date: string;
  command: string;
  git: string;
  machine: ReturnType<typeof machineFacts>;
  loadAvgEnd: number[];
  containers: number;
  image: string;
  windowS: number;
  bundleBytes: number;
  /** The agent as installed: the bundle. */
  agent: Sampled | null;
  /** The same agent loaded from dist/agent/main.js and node_modules. */
  unbundled: Sampled | null;
  /** The reference: bare Node with one ws connection, under the agent's node flags. */
  bare: Sampled | null;
  /** The same reference without the flags. */
  bareDefault: Sampled | null;
  othersPct: number | null;
  errors: string[];
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    args: process.argv.slice(2),
    options: {
      containers: { type: 'string' },
      image: { type: 'string' },
      'window-s': { type: 'string' },
      'settle-s': { type: 'string' },
      json: { type: 'string' },
      doc: { type: 'string' },
      'no-doc': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (v.help) return void process.stdout.write(HELP);
  const containers = Number(v.containers ?? 5);
  const image = v.image ?? '127.0.0.1:5000/busybox:1';
  const windowS = Number(v['window-s'] ?? 30);
  const settleS = Number(v['settle-s'] ?? 10);
  const doc = v['no-doc'] ? null : path.resolve(v.doc ?? path.join(repoRoot, 'docs', 'benchmarks.md'));

  const figures: AgentFigures = {
    date: new Date().toISOString(),
    command: `npm run bench:agent${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    git: gitState(repoRoot),
    machine: machineFacts(),
    loadAvgEnd: [],
    containers,
    image,
    windowS,
    bundleBytes: 0,
    agent: null,
    unbundled: null,
    bare: null,
    bareDefault: null,
    othersPct: null,
    errors: [],
  };

  const docker = new DockerRuntime({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  try {
    await Promise.race([docker.version(), sleep(3000).then(() => Promise.reject(new Error('timeout')))]);
  } catch {
    process.stderr.write('bench:agent: no Docker engine at /var/run/docker.sock: run scripts/test-env.sh (as root) first\n');
    process.exit(2);
  }
  const registry = image.split('/')[0]!;
  try {
    const [name, tag] = image.slice(registry.length + 1).split(':');
    const res = await fetch(`http://${registry}/v2/${name}/manifests/${tag ?? 'latest'}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      signal: AbortSignal.timeout(3000),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  } catch (error) {
    process.stderr.write(`bench:agent: ${image} is not in the registry ${registry} (${(error as Error).message}): run scripts/test-env.sh first\n`);
    process.exit(2);
  }
  if (!existsSync(path.join(distDir, 'agent', BUNDLE))) throw new Error('dist/agent/tether-agent.js is missing: run npm run build first');
  figures.bundleBytes = statSync(path.join(distDir, 'agent', BUNDLE)).size;

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tether-bench-agent-'));
  const nodeIds: string[] = [];
  let hub: NodeProc | null = null;
  const agents: NodeProc[] = [];
  const cleanup = async () => {
    await Promise.all(agents.map((a) => terminate(a, 15_000).catch(() => undefined)));
    for (const nodeId of nodeIds) {
      // Every container an agent creates carries all its labels, so the runtime's own list finds them.
      const list = await docker.listContainers(nodeId).catch(() => []);
      await Promise.all(list.map((c) => docker.removeContainer(c.id).catch(() => undefined)));
      log(`removed ${list.length} containers labelled ${LABELS.nodeId}=${nodeId}`);
    }
    await terminate(hub, 5000).catch(() => undefined);
    killAll();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  process.on('SIGTERM', () => void cleanup().then(() => process.exit(143)));
  const watchdog = setTimeout(() => {
    figures.errors.push('the run took longer than its deadline');
    void cleanup().then(() => process.exit(3));
  }, (settleS + windowS + 300) * 1000);
  watchdog.unref();

  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const hubDir = path.join(tmp, 'hub');
    hub = await startHub(url, { args: ['--port', String(port), '--data-dir', hubDir, '--log-level', 'warn'], logFile: path.join(tmp, 'hub.log'), inspect: false });
    const token = readFileSync(path.join(hubDir, 'admin-token'), 'utf8').trim();
    const api = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    // Each agent its own node (label bench=<kind>) and its own service pinned there.
    const kinds = [
      { kind: 'bundled', script: `agent/${BUNDLE}` },
      { kind: 'unbundled', script: 'agent/main.js' },
    ] as const;
    for (const { kind, script } of kinds) {
      const join = await api('POST', '/v1/join-tokens', {});
      const name = `bench-agent-${kind}-${process.pid}`;
      const agent = startProgram(
        script,
        ['--hub', url, '--join-token', join.body.token, '--data-dir', path.join(tmp, kind), '--name', name, '--label', `bench=${kind}`, '--publish-address', '127.0.0.1', '--log-level', 'warn'],
        path.join(tmp, `${kind}.log`),
        AGENT_EXEC_ARGV,
      );
      agents.push(agent);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const nodes = (await api('GET', '/v1/nodes')).body.nodes as Array<{ id: string; name: string; state: string }>;
        const nodeId = nodes.find((n) => n.name === name && n.state === 'ready')?.id;
        if (nodeId) {
          nodeIds.push(nodeId);
          break;
        }
        if (Date.now() > deadline) throw new Error(`the ${kind} agent did not connect:\n${readFileSync(path.join(tmp, `${kind}.log`), 'utf8').slice(-2000)}`);
        await sleep(200);
      }
      log(`${kind} agent ${nodeIds.at(-1)} connected`);
    }
    const services = kinds.map(({ kind }) => `bench-agent-${kind}-${process.pid}`);
    for (const [i, { kind }] of kinds.entries()) {
      const put = await api('PUT', `/v1/services/${services[i]}`, { image, command: ['/bin/sleep', '3600'], replicas: containers, constraints: [`node.labels.bench==${kind}`] });
      if (put.status >= 300) throw new Error(`PUT: HTTP ${put.status} ${JSON.stringify(put.body)}`);
    }
    log(`deploying ${containers} containers of ${image} on each agent`);
    const runDeadline = Date.now() + 120_000;
    for (const service of services) {
      for (;;) {
        const view = (await api('GET', `/v1/services/${service}`)).body as { status: { running: number } };
        if (view.status.running === containers) break;
        if (Date.now() > runDeadline) throw new Error(`${service}: ${view.status.running} of ${containers} running after 120 s`);
        await sleep(250);
      }
    }
    log(`${containers} containers running on each; starting the bare ws references`);
    const baseline = await startBaseline(false);
    const bareArgs = ['--url', `ws://127.0.0.1:${baseline.port}/`, '--heartbeat-ms', '5000'];
    const bare = startProgram('bench/bare-ws-client.js', bareArgs, path.join(tmp, 'bare.log'), AGENT_EXEC_ARGV);
    const bareDefault = startProgram('bench/bare-ws-client.js', bareArgs, path.join(tmp, 'bare-default.log'));
    log(`settling ${settleS} s, then measuring ${windowS} s`);
    await sleep(settleS * 1000);

    const measured = [agents[0]!.pid, agents[1]!.pid, bare.pid, bareDefault.pid];
    const window = new CpuWindow(measured);
    const samples = measured.map(() => [] as number[]);
    for (let i = 0; i < windowS; i++) {
      await sleep(1000);
      measured.forEach((pid, j) => samples[j]!.push(rssBytes(pid) ?? NaN));
    }
    const cpu = window.finish();
    const sampled = (xs: number[], pid: number): Sampled => ({
      meanMiB: round(xs.reduce((a, b) => a + b, 0) / xs.length / 1024 / 1024),
      maxMiB: round(Math.max(...xs) / 1024 / 1024),
      cpuPct: round(cpu.pct.get(pid) ?? NaN, 3),
    });
    const [agent, unbundled, bareFigures, bareDefaultFigures] = measured.map((pid, j) => sampled(samples[j]!, pid));
    figures.agent = agent ?? null;
    figures.unbundled = unbundled ?? null;
    figures.bare = bareFigures ?? null;
    figures.bareDefault = bareDefaultFigures ?? null;
    figures.othersPct = round(cpu.othersPct, 1);
    for (const service of services) await api('DELETE', `/v1/services/${service}`).catch(() => undefined);
  } catch (error) {
    figures.errors.push((error as Error).message);
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
  figures.loadAvgEnd = os.loadavg().map((x) => round(x));

  const report = formatAgentReport(figures);
  process.stdout.write(`\n${report}\n`);
  if (v.json) writeFileSync(path.resolve(v.json), `${JSON.stringify(figures, null, 2)}\n`);
  if (doc) {
    mkdirSync(path.dirname(doc), { recursive: true });
    if (!existsSync(doc)) writeFileSync(doc, DOC_HEADER);
    appendFileSync(doc, `\n${report}\n`);
  }
  process.exitCode = figures.errors.length ? 1 : 0;
}

function formatAgentReport(f: AgentFigures): string {
  const a = f.agent;
  const u = f.unbundled;
  const b = f.bare;
  const d = f.bareDefault;
  const ratio = a && b ? a.meanMiB / b.meanMiB : null;
  const rss = (x: Sampled | null) => (x ? `${x.meanMiB} MiB (max ${x.maxMiB})` : 'n/a');
  const versus = (x: Sampled | null) => (x && b ? `${round(x.meanMiB / b.meanMiB)}x` : 'n/a');
  const verdict = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? 'met' : 'missed');
  const rows = [
    ['idle RSS, the bundle (mean over the window)', rss(a), rss(b), versus(a), `<= ${TARGET_RSS_RATIO}x`, verdict(ratio === null ? null : ratio <= TARGET_RSS_RATIO)],
    ['idle RSS, the bundle, absolute', rss(a), '', '', `< 70 MB (${round(TARGET_RSS_MIB, 1)} MiB)`, verdict(a ? a.meanMiB < TARGET_RSS_MIB : null)],
    ['idle CPU, the bundle', a ? `${a.cpuPct} % of a core` : 'n/a', b ? `${b.cpuPct} % of a core` : 'n/a', '', '< 1 % of a core', verdict(a ? a.cpuPct < 1 : null)],
    ['for the record: idle RSS, dist/agent/main.js from node_modules', rss(u), rss(b), versus(u), '', ''],
    ['for the record: idle CPU, dist/agent/main.js', u ? `${u.cpuPct} % of a core` : 'n/a', '', '', '', ''],
    ['for the record: bare node + ws without the node flags', rss(d), rss(b), versus(d), '', ''],
  ];
  return [
    `## One agent on Docker, bundled: ${f.containers} containers, idle ${f.windowS} s (${f.date.slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `- command: \`${f.command}\``,
    `- machine: ${machineLine(f.machine, f.loadAvgEnd)}`,
    `- commit: ${f.git}`,
    `- setup: a hub process; \`node ${AGENT_EXEC_ARGV.join(' ')} dist/agent/${BUNDLE}\` (${round(f.bundleBytes / 1024 / 1024)} MiB, the file install.sh installs, with install.sh's node flags) and beside it the same agent as \`dist/agent/main.js\` loaded from node_modules, each its own node (log level warn) with ${f.containers} x \`${f.image}\` running \`/bin/sleep 3600\`; reference: bench/bare-ws-client.ts under the same node flags, one ws connection to bench/baseline-server.ts with a heartbeat frame and a ping every 5 s; RSS from /proc/<pid>/status each second, CPU from /proc/<pid>/stat over the same window for all; others used ${f.othersPct ?? 'n/a'} % of a core meanwhile`,
    '',
    '| figure | agent | bare node + ws | agent / bare | target | verdict |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    ...(f.errors.length ? ['', ...f.errors.map((e) => `- error: ${e.split('\n')[0]}`)] : []),
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:agent: ${(error as Error).stack ?? String(error)}\n`);
  killAll();
  process.exit(1);
});
