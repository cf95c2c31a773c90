/** The fleet benchmark's figures as a Markdown section: printed, and appended to docs/benchmarks.md. */
import type { CpuFigures, FleetFigures, Latency } from './fleet-figures.js';
import { checkTargets, scaleNote, targetSetFor, type TargetCheck, type TargetId } from './fleet-targets.js';
import type { MachineFacts } from './proc-stats.js';

export const DOC_HEADER = `# Benchmarks

Appended by \`npm run bench:fleet\` and \`npm run bench:agent\` (sources in bench/). Every entry
names the exact command, the machine, the commit and the load on the machine while it ran.
Figures are measured, never asserted; misses are recorded like hits. The targets come from issue
10 and are stated for 10,000 and 19,000 agents at a 5 s heartbeat (100,000 replicas): at other
sizes the verdict column is only a hint (bench/fleet-targets.ts).

How the fleet figures are taken (bench/fleet.ts):

- The hub is \`node dist/hub/main.js\` on 127.0.0.1 with a temp data dir and log level warn (its
  log goes to a file), started with \`--inspect=127.0.0.1:0\` so the benchmark can force a full GC
  through the inspector (\`HeapProfiler.collectGarbage\`) before reading VmRSS: the hub has no GC
  hook of its own. \`--lost-after-ms\` is the hub's own default (60 s) unless given.
- Agents are the real \`Agent\` (agent/agent.ts: real join, WebSocket, protocol, reconcile loop,
  default backoff) over one \`SimulatedRuntime\` each, at most 2,500 per process, joined through
  \`POST /v1/join\` with the agent's own \`joinHub\` (32 joins in flight). They all start at once.
- The baseline is bench/baseline-server.ts: a bare \`ws\` server (the hub gateway's options) that
  JSON.parses every frame. The same agent processes open the same number of plain \`ws\`
  connections to it, send the same heartbeat frame and a ping at the same interval. It runs
  first, alone, and is gone before the hub starts.
- RSS per agent: (VmRSS once all agents are welcomed - VmRSS before any joined) / N, both after a
  forced GC ("of which connection": from after the joins); the baseline per connection the same
  way. The V8 heap figures are heapUsed after the same GCs (the hub's also after the joins). CPU: utime+stime from /proc/<pid>/stat over the window, as % of one core; "others" is what
  the rest of the machine used meanwhile (other people's tests).
- Idle windows: first the benchmark waits (at most 120 s) for 5 s with no store write and no agent
  reconnecting; when the hub never goes quiet the window is measured anyway and the entry says how
  many agents reconnected during it.
- Heartbeat throughput: every connection sends F/N heartbeat frames (one per connection per
  round), then a ping with a unique payload; frames / (last pong - first frame).
- Placement: \`PUT /v1/services/bench\` (R replicas, no resources); the agents are asked every 100
  ms until they have reported R running, then \`GET /v1/services/bench\` is polled (spaced by twice
  its duration: a view of 100,000 replicas is seconds of work for the hub); the figure is when the
  first GET showing all R running was sent.
- Restart: SIGKILL the hub, start it on the same data dir and port, until every agent has a welcome
  again and /healthz counts them all (bounded by max(180 s, N x 20 ms) from the kill); for 20 s
  after losing a working link the agents retry a refusing hub every 0.5-1.5 s, honour a busy
  hub's Retry-After (jittered 0.5-1.5x), and otherwise back off (500 ms base, 30 s cap).
- Failover: every 10th agent is stopped (its link closes, as when its process is stopped); the
  replicas they ran are counted by them; until the agents report R running again and a GET shows R
  running with none on a stopped node, minus lostAfter. The hub counts a node away from its last
  heartbeat, up to one interval before the cut.
- Store writes: the hub's own counters on its /metrics, read at each phase's start and end and
  summed over the hub processes of the run; also counted from outside (inotify renames of the
  shard files, sizes after each) and /proc/<hub>/io write_bytes less the hub's log.
- Hub start (the last phase, "cold start"): every agent is stopped (its link closes, it does not
  reconnect), the hub is SIGKILLed and started on the same data dir and port, as the run left it
  (shard files and change logs). From the SIGKILL until /healthz answers 200, which it does once
  the store and the dispatcher are loaded, the reconcile loop and the liveness sweep started and
  the API listens; and until the first scheduling pass has planned
  (\`tether_scheduler_plan_seconds_count\` >= 1 on /metrics). The restart phase's hub start is the
  same under the reconnect storm (/healthz waits behind the handshakes) and stays in the storm's row.
`;

const fmt = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

const cpu = (c: CpuFigures | null | undefined) =>
  c
    ? `${fmt(c.pctOfCore, 2)} % of a core (${fmt(c.windowS, 0)} s; agent processes ${fmt(c.agentProcessesPct)} %, others ${fmt(c.othersPct)} %${c.agentReconnects ? `; ${c.agentReconnects} agents reconnected meanwhile` : ''}${c.quietAfterS !== undefined && c.quietAfterS > 10 ? `; measured after ${fmt(c.quietAfterS, 0)} s waiting for the hub to go quiet` : ''})`
    : 'n/a';

const lat = (l: Latency | null | undefined) => (l ? `p50 ${fmt(l.p50Ms)} ms, p99 ${fmt(l.p99Ms)} ms, max ${fmt(l.maxMs)} ms (n=${l.n})` : 'n/a');

const curveText = (c: Record<string, number | null>) =>
  Object.entries(c)
    .map(([k, v]) => `${k} ${fmt(v, 2)}`)
    .join(', ');

const countsText = (c: Record<string, number>) =>
  Object.entries(c)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, n]) => `${n} x \`${k.replace(/`/g, "'")}\``)
    .join('; ') || 'nothing';

const MiB = 1024 * 1024;

/** Where the store's bytes went: each phase that wrote, its MiB and writes. */
export function storeByPhaseText(phases: FleetFigures['hub']['storeByPhase']): string {
  return phases
    .filter((p) => p.bytes === null || p.bytes > 0)
    .map((p) => (p.bytes === null ? `${p.phase} n/a` : `${p.phase} ${fmt(p.bytes / MiB, 2)} MiB (${fmt(p.writes, 0)} writes)`))
    .join('; ') || 'nothing written';
}

export function machineLine(m: MachineFacts, loadEnd: number[]): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.kernel}; load average ${m.loadAvg.join(' / ')} at start, ${loadEnd.length ? loadEnd.join(' / ') : 'n/a'} at end`;
}

export function formatReport(f: FleetFigures): string {
  const c = f.config;
  const h = f.hub;
  const b = f.baseline;
  const exact = targetSetFor(f).exact;
  const checks = new Map(checkTargets(f).map((t) => [t.id, t]));
  /** The target and verdict cells of a row: empty when the run's target set has none for it. */
  const judge = (id: TargetId): [string, string] => {
    const t = checks.get(id);
    if (!t) return ['', ''];
    return [t.target, t.ok === null ? 'not measured' : `${t.ok ? 'met' : 'missed'}${exact ? '' : ' (hint)'}`];
  };

  const rows: string[][] = [];
  const rssRatio = h.rss && b ? h.rss.perAgentKiB / b.rssPerConnectionKiB : null;
  rows.push([
    'RSS per connected agent, after GC',
    h.rss ? `${fmt(h.rss.perAgentKiB)} KiB (${fmt(h.rss.beforeMiB)} -> ${fmt(h.rss.connectedMiB)} MiB)` : 'n/a',
    b ? `${fmt(b.rssPerConnectionKiB)} KiB per connection (${fmt(b.rssBeforeMiB)} -> ${fmt(b.rssAfterMiB)} MiB)` : 'n/a',
    rssRatio !== null ? `${fmt(rssRatio, 2)}x` : 'n/a',
    ...judge('rss'),
  ]);
  rows.push([
    '  of which connection + session (after join)',
    h.rss ? `${fmt(h.rss.perConnectionKiB)} KiB; node record ${fmt(h.rss.perAgentKiB - h.rss.perConnectionKiB)} KiB; V8 heap ${fmt(h.rss.heapPerAgentKiB)} KiB/agent (${fmt(h.rss.heapJoinedPerAgentKiB)} after the joins)` : 'n/a',
    b ? `V8 heap ${fmt(b.heapPerConnectionKiB)} KiB per connection` : '',
    '',
    '',
    '',
  ]);
  rows.push([
    '  without GC',
    h.rss ? `${fmt(h.rss.perAgentNoGcKiB)} KiB` : 'n/a',
    b ? `${fmt(b.rssPerConnectionNoGcKiB)} KiB` : 'n/a',
    h.rss && b ? `${fmt(h.rss.perAgentNoGcKiB / b.rssPerConnectionNoGcKiB, 2)}x` : 'n/a',
    '',
    '',
  ]);
  rows.push([
    `CPU idle-heartbeating (${fmt(c.heartbeatMs, 0)} ms), no services`,
    cpu(h.idleCpu),
    b ? cpu(b.idleCpu) : 'n/a',
    h.idleCpu && b?.idleCpu && b.idleCpu.pctOfCore > 0 ? `${fmt(h.idleCpu.pctOfCore / b.idleCpu.pctOfCore, 1)}x` : 'n/a',
    ...judge('idleCpu'),
  ]);
  rows.push([
    `CPU idle-heartbeating with ${fmt(c.replicas, 0)} replicas placed`,
    cpu(h.idleCpuWithReplicas),
    '',
    '',
    ...judge('idleCpuWithReplicas'),
  ]);
  const tput = h.burst && b?.burst ? h.burst.perSecond / b.burst.perSecond : null;
  rows.push([
    'heartbeat throughput (burst)',
    h.burst ? `${fmt(h.burst.perSecond, 0)} frames/s (${fmt(h.burst.frames, 0)} in ${fmt(h.burst.seconds, 2)} s${h.burst.missingPongs ? `, ${h.burst.missingPongs} pongs missing` : ''})` : 'n/a',
    b?.burst ? `${fmt(b.burst.perSecond, 0)} frames/s (${fmt(b.burst.frames, 0)} in ${fmt(b.burst.seconds, 2)} s; server counted ${fmt(b.burst.serverCounted ?? null, 0)})` : 'n/a',
    tput !== null ? `${fmt(100 * tput, 0)} %` : 'n/a',
    ...judge('burst'),
  ]);
  rows.push([
    `connect + hello ${fmt(c.agents, 0)} agents`,
    h.connectS !== null ? `${fmt(h.connectS, 2)} s (${fmt(h.ready, 0)} welcomed, /healthz ${fmt(h.connectedNodes, 0)})` : `n/a (${fmt(h.ready, 0)} welcomed)`,
    b ? `${fmt(b.connectS, 2)} s (${fmt(b.connected, 0)} open)` : 'n/a',
    h.connectS !== null && b ? `${fmt(h.connectS / b.connectS, 1)}x` : 'n/a',
    '',
    '',
  ]);
  rows.push([
    `join ${fmt(c.agents, 0)} agents (POST /v1/join)`,
    h.joinS !== null ? `${fmt(h.joinS, 2)} s, ${fmt(h.joined / h.joinS, 0)} joins/s (${fmt(h.joined, 0)} joined)` : 'n/a',
    '',
    '',
    '',
    '',
  ]);
  const r = h.restart;
  rows.push([
    'reconnect storm after hub SIGKILL + restart',
    r
      ? `${fmt(r.secondsFromKill, 2)} s from kill (${fmt(r.secondsFromListening, 2)} s after /healthz; hub start ${fmt(r.hubStartS, 2)} s); ${fmt(r.reconnected, 0)} of ${fmt(r.expected, 0)} back${r.extraConnects ? `, ${r.extraConnects} extra welcomes` : ''}${r.runningAgainS !== null ? `; all replicas running again ${fmt(r.runningAgainS, 2)} s after the kill` : ''}`
      : 'n/a',
    '',
    '',
    ...judge('storm'),
  ]);
  const cs = h.coldStart;
  rows.push([
    "hub start to ready on the run's data dir, no agent connecting",
    cs?.measured
      ? `SIGKILL to /healthz 200 ${fmt(cs.healthzS, 2)} s (store and dispatcher loaded, reconcile loop and liveness sweep started, API listening); first pass planned ${cs.firstPassPlannedS === null ? 'n/a (none in time)' : `${fmt(cs.firstPassPlannedS, 2)} s`}; store ${fmt((cs.shardBytes + cs.logBytes) / MiB, 1)} MiB (shards ${fmt(cs.shardBytes / MiB, 1)} MiB, change logs ${fmt(cs.logBytes / MiB, 1)} MiB) for ${fmt(cs.nodes, 0)} nodes and ${fmt(cs.replicas, 0)} replicas${cs.agentConnects ? `; ${cs.agentConnects} agent welcomes meanwhile (none expected)` : ''}`
      : `not measured: ${cs?.reason ?? 'not run'}`,
    '',
    '',
    ...judge('hubStart'),
  ]);
  const p = h.placement;
  rows.push([
    `place and ack ${fmt(c.replicas, 0)} replicas`,
    p ? `${fmt(p.seconds, 2)} s, ${fmt(p.perSecond, 0)} replicas/s (${fmt(p.running, 0)} running; agents had reported all after ${fmt(p.agentsReportedS, 2)} s; one GET of the service took ${fmt(p.lastGetMs, 0)} ms)` : 'n/a',
    '',
    '',
    ...judge('placement'),
  ]);
  const fo = h.failover;
  rows.push([
    'failover after cutting 10 % of agents',
    fo.measured
      ? `${fmt(fo.afterLostAfterS, 2)} s after lostAfter (${fmt(fo.totalS, 2)} s from cut, lostAfter ${fmt(fo.lostAfterMs / 1000, 1)} s; ${fo.cutAgents} agents, ${fo.replicasToMove} replicas; first replacement reported running at ${fmt(fo.firstMoveS, 2)} s, all at ${fmt(fo.agentsReportedS, 2)} s)`
      : `not measured: ${fo.reason}`,
    '',
    '',
    ...judge('failover'),
  ]);
  const a = h.api;
  rows.push(['API GET /v1/services/probe', lat(a?.get), '', '', ...judge('apiGet')]);
  rows.push(['API PUT /v1/services/probe (changing)', lat(a?.put), '', '', ...judge('apiPut')]);
  if (a?.getBigService) rows.push([`API GET /v1/services/bench (${fmt(c.replicas, 0)} replicas)`, lat(a.getBigService), '', '', '', '']);
  const s = h.store;
  rows.push([
    'store writes during the run',
    s
      ? `${s.hubBytes != null ? `${fmt(s.hubWrites, 0)} writes, ${fmt(s.hubBytes / MiB, 1)} MiB by the hub's counters; ` : ''}${fmt(s.writes, 0)} shard-file writes, ${fmt(s.bytesAtRename / MiB, 1)} MiB (at rename); write_bytes ${fmt(s.writeBytesProc / MiB, 1)} MiB`
      : 'n/a',
    '',
    '',
    ...judge('storeBytes'),
  ]);
  if (h.storeByPhase?.length) rows.push(['  of which, by phase (hub counters)', storeByPhaseText(h.storeByPhase), '', '', '', '']);

  const table = [
    '| figure | hub | baseline (bare ws) | hub / baseline | target | verdict |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`),
  ].join('\n');

  const notes: string[] = [scaleNote(f)];
  for (const n of f.notes ?? []) notes.push(n);
  if (f.errors.length) notes.push(`Errors during the run:\n${f.errors.map((e) => `  - ${e.split('\n')[0]}`).join('\n')}`);
  if (h.connectCurve && Object.keys(h.connectCurve).length) notes.push(`Connect: agents welcomed after ${curveText(h.connectCurve)} s.`);
  if (r) {
    notes.push(`Reconnect storm: agents back after ${curveText(r.curveFromKill)} s from the kill; agents logged meanwhile: ${countsText(r.agentMessages)}.`);
  }
  if (h.agentWarnings || h.agentErrors) notes.push(`Agents logged ${h.agentWarnings} warnings and ${h.agentErrors} errors over the run: ${countsText(h.agentMessages)}.`);
  for (const [phase, top] of Object.entries(f.profiles)) {
    notes.push(`Hub CPU profile, phase ${phase} (self time): ${top.slice(0, 10).map((t) => `${t.fn} ${t.where} ${t.pct} %`).join('; ')}`);
  }

  return [
    `## Fleet: ${c.agents.toLocaleString('en-US')} agents, ${c.skipped?.includes('placement') ? 'no replicas' : `${c.replicas.toLocaleString('en-US')} replicas`}, heartbeat ${c.heartbeatMs} ms (${f.date.slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `- command: \`${f.command}\``,
    `- machine: ${machineLine(f.machine, f.loadAvgEnd)}`,
    `- commit: ${f.git}`,
    `- setup: ${c.processes} agent processes${c.sourceAddresses ? ' (each bound to its own 127.0.1.x)' : ''}, hub log level ${c.hubLogLevel}${c.hubEnv && Object.keys(c.hubEnv).length ? `, hub environment ${Object.entries(c.hubEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}${c.sharedEnv && Object.keys(c.sharedEnv).length ? `, every process's environment (baseline too) ${Object.entries(c.sharedEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}, lostAfter ${c.lostAfterMs} ms, idle windows ${c.durationS} s, GC ${c.gcViaInspector ? 'forced through the inspector' : 'not forced'}${c.skipped?.length ? `; skipped: ${c.skipped.join(', ')}` : ''}${c.profiled ? '; hub CPU-profiled during phases (figures carry the profiler overhead)' : ''}`,
    '',
    table,
    ...(notes.length ? ['', ...notes.map((n) => `- ${n}`)] : []),
  ].join('\n');
}

/**
 * After --runs N: one line per target saying whether it held in every run, with each run's value,
 * since the issue asks for every target met in each of consecutive runs, not in a good one.
 */
export function formatRunsSummary(runs: FleetFigures[]): string {
  const first = runs[0]!;
  const c = first.config;
  const byTarget = new Map<TargetId, TargetCheck[]>();
  for (const f of runs) for (const t of checkTargets(f)) byTarget.set(t.id, [...(byTarget.get(t.id) ?? []), t]);
  const lines = [...byTarget.values()].map((checks) => {
    const t = checks[0]!;
    const met = checks.filter((x) => x.ok === true).length;
    const verdict =
      met === runs.length
        ? `held in every run (${runs.length})`
        : checks.every((x) => x.ok === null)
          ? 'not measured in any run'
          : `did not hold in every run: met in ${met} of ${runs.length}${checks.some((x) => x.ok === null) ? ', some not measured' : ''}`;
    return `- ${t.figure}, ${t.target}: **${verdict}**; ${checks.map((x, i) => `run ${i + 1} ${x.value}`).join(', ')}`;
  });
  const failed = runs.map((f, i) => (f.errors.length ? i + 1 : 0)).filter(Boolean);
  return [
    `## Fleet: ${c.agents.toLocaleString('en-US')} agents, ${runs.length} runs back to back (${first.date.slice(0, 16).replace('T', ' ')} UTC): did each target hold in every run?`,
    '',
    `- command: \`${first.command}\``,
    `- ${scaleNote(first)}`,
    ...(failed.length ? [`- runs with errors: ${failed.join(', ')} (see their entries)`] : []),
    ...lines,
  ].join('\n');
}
