/** What one run of the fleet benchmark measured (written with --json; read by the smoke test). */
import type { MachineFacts } from './proc-stats.js';

export interface Latency {
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface BurstFigures {
  connections: number;
  frames: number;
  seconds: number;
  perSecond: number;
  missingPongs: number;
  /** For the baseline: frames its server counted (a check on the method). */
  serverCounted?: number;
}

export interface CpuFigures {
  windowS: number;
  pctOfCore: number;
  /** The agent processes together, % of one core. */
  agentProcessesPct?: number;
  /** Everything else on the machine meanwhile, % of one core: other people's work. */
  othersPct: number;
  /** Welcomes the agents got during the window: connections that dropped and came back. */
  agentReconnects?: number;
  /** How long the hub took to go quiet (no store write, no reconnect for --quiet-s) before the window; capped at 120 s. */
  quietAfterS?: number;
}

export interface FleetFigures {
  date: string;
  command: string;
  git: string;
  machine: MachineFacts;
  loadAvgEnd: number[];
  config: {
    agents: number;
    replicas: number;
    heartbeatMs: number;
    durationS: number;
    processes: number;
    lostAfterMs: number;
    hubLogLevel: string;
    /** The hub's own environment additions (--hub-env); absent in older runs. */
    hubEnv?: Record<string, string>;
    /** Allocator and node settings in the benchmark's own environment, so every process's (baseline too); absent in older runs. */
    sharedEnv?: Record<string, string>;
    gcViaInspector: boolean;
    sourceAddresses: boolean;
    profiled: boolean;
    /** Phases left out (--skip). */
    skipped: string[];
  };
  baseline: null | {
    connected: number;
    connectS: number;
    rssBeforeMiB: number;
    rssAfterMiB: number;
    rssPerConnectionKiB: number;
    rssPerConnectionNoGcKiB: number;
    /** V8 heap used per connection after GC (null without the inspector). */
    heapPerConnectionKiB: number | null;
    idleCpu: CpuFigures | null;
    burst: BurstFigures | null;
  };
  hub: {
    joined: number;
    joinS: number | null;
    /** Agents whose hello the hub welcomed, and the hub's own count of sessions. */
    ready: number;
    connectedNodes: number;
    connectS: number | null;
    /** Seconds until 50/90/99/100 % of the agents were welcomed. */
    connectCurve: Record<string, number | null>;
    rss: null | {
      beforeMiB: number;
      joinedMiB: number;
      connectedMiB: number;
      /** (connected - before) / N, after a full GC in the hub. */
      perAgentKiB: number;
      /** (connected - joined) / N: the connection and session without the node record. */
      perConnectionKiB: number;
      perAgentNoGcKiB: number;
      heapPerAgentKiB: number | null;
      /** V8 heap used per agent after the joins, before any connection (null without the inspector). */
      heapJoinedPerAgentKiB: number | null;
    };
    idleCpu: CpuFigures | null;
    idleCpuWithReplicas: CpuFigures | null;
    burst: BurstFigures | null;
    placement: null | {
      replicas: number;
      running: number;
      /** From the PUT until the first GET that showed every replica running was sent. */
      seconds: number;
      perSecond: number;
      /** From the PUT until the agents had reported every replica running. */
      agentsReportedS: number;
      lastGetMs: number;
    };
    api: null | { get: Latency; put: Latency; getBigService: Latency | null };
    restart: null | {
      reconnected: number;
      expected: number;
      /** From the SIGKILL until every agent is welcomed again and /healthz counts them all. */
      secondsFromKill: number;
      secondsFromListening: number;
      hubStartS: number;
      /** Welcomes beyond one per agent during the storm (refused or repeated attempts that got through twice). */
      extraConnects: number;
      runningAgainS: number | null;
      /** Seconds from the kill until 50/90/99/100 % of the agents were welcomed again. */
      curveFromKill: Record<string, number | null>;
      /** What the agents logged during the storm (refusals, timeouts), by message. */
      agentMessages: Record<string, number>;
    };
    failover:
      | { measured: false; reason: string }
      | {
          measured: true;
          lostAfterMs: number;
          cutAgents: number;
          replicasToMove: number;
          /** When the first replacement was reported running by an agent. */
          firstMoveS: number | null;
          /** When the agents had reported every replica running again. */
          agentsReportedS: number;
          totalS: number;
          afterLostAfterS: number;
        };
    /**
     * The hub started on the run's data dir with every agent stopped (issue 10's hub-start target),
     * times from the SIGKILL of the hub before it.
     */
    coldStart:
      | { measured: false; reason: string }
      | {
          measured: true;
          /** Until /healthz answered 200: store and dispatcher loaded, loop and sweep started, API listening. */
          healthzS: number;
          /** Until the first scheduling pass had planned (tether_scheduler_plan_seconds_count >= 1); null when none did in time. */
          firstPassPlannedS: number | null;
          /** What the start loaded: the store's shard files and change logs, in bytes. */
          shardBytes: number;
          logBytes: number;
          nodes: number;
          replicas: number;
          /** Welcomes the stopped agents got meanwhile: 0 when none connected, as intended. */
          agentConnects: number;
        };
    store: null | {
      /** The hub's own counters (/metrics), summed over the run's hub processes; null when unreadable. */
      hubWrites: number | null;
      hubBytes: number | null;
      /** Observed from outside: renames of shard files, and their sizes after each. */
      writes: number;
      bytesAtRename: number;
      writeBytesProc: number;
      source: string;
    };
    /** The hub's store counters over each phase (end - start), in the order the phases ran. */
    storeByPhase: Array<{ phase: string; writes: number | null; bytes: number | null }>;
    agentWarnings: number;
    agentErrors: number;
    agentMessages: Record<string, number>;
  };
  profiles: Record<string, Array<{ fn: string; where: string; pct: number }>>;
  errors: string[];
  /** Things worth knowing that are not failures (retried requests). */
  notes: string[];
}
