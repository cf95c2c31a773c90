/**
 * What an agent tells the hub about its machine (hello.facts). Read once at start; every value
 * has a `node:os` fallback, since an odd device must still be able to join the fleet.
 */
import os from 'node:os';
import { statfs } from 'node:fs/promises';
import type { StatsFs } from 'node:fs';
import si from 'systeminformation';
import { NODE_FACT_MAX_LENGTH as MAX_LENGTH, type DiskUsage, type NodeFacts } from '../shared/protocol.js';
import { TETHER_VERSION } from '../shared/version.js';

/** No single probe may hold up the agent's start by more than this. */
const PROBE_TIMEOUT_MS = 3_000;
/** Where the engine keeps images: the disk facts describe the filesystem that fills up on pulls. */
const DOCKER_DATA_DIR = '/var/lib/docker';

function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}

function wholeNonNegative(n: unknown): number | null {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.floor(n) : null;
}

/** Resolves to null instead of rejecting or hanging: a missing fact is better than no agent. */
async function probe<T>(read: () => Promise<T>, timeoutMs = PROBE_TIMEOUT_MS): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([read().catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function isUnder(path: string, mount: string): boolean {
  return mount === '/' || path === mount || path.startsWith(`${mount}/`);
}

/** The filesystem holding the engine's data (normally `/`), else the largest one. */
function pickFilesystem(filesystems: si.Systeminformation.FsSizeData[]): si.Systeminformation.FsSizeData | null {
  const usable = filesystems.filter((f) => typeof f.mount === 'string' && wholeNonNegative(f.size) !== null && f.size > 0);
  const holding = usable.filter((f) => isUnder(DOCKER_DATA_DIR, f.mount)).sort((a, b) => b.mount.length - a.mount.length);
  if (holding[0]) return holding[0];
  return usable.sort((a, b) => b.size - a.size)[0] ?? null;
}

async function diskFallback(): Promise<{ total: number; free: number }> {
  try {
    const s = await statfs('/');
    return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
  } catch {
    return { total: 0, free: 0 };
  }
}

export interface DiskUsageReaderOptions {
  statfs?: (path: string) => Promise<StatsFs>;
  /** How long one read waits for its statfs; default PROBE_TIMEOUT_MS. */
  timeoutMs?: number;
}

/**
 * Space on the filesystem holding a directory (the agent's data dir, the engine's storage), for
 * the node conditions; null when the agent cannot see that path (the engine's storage from inside
 * a container, say) or statfs does not answer in time.
 */
export class DiskUsageReader {
  private readonly statfs: (path: string) => Promise<StatsFs>;
  private readonly timeoutMs: number;
  /**
   * The statfs of each path not yet settled. A filesystem that hangs (a dead NFS mount, a failing
   * card) holds a libuv thread per call for as long as it hangs, and the pool has four: a new call
   * every refresh would take them all. A read meanwhile waits on the one in flight, and so reads
   * null while it hangs. As many entries as paths read (two).
   */
  private readonly inFlight = new Map<string, Promise<StatsFs | null>>();

  constructor(opts: DiskUsageReaderOptions = {}) {
    this.statfs = opts.statfs ?? ((path) => statfs(path));
    this.timeoutMs = opts.timeoutMs ?? PROBE_TIMEOUT_MS;
  }

  async read(dir: string): Promise<DiskUsage | null> {
    let raw = this.inFlight.get(dir);
    if (!raw) {
      const call = this.statfs(dir).catch(() => null);
      raw = call;
      this.inFlight.set(dir, call);
      void call.finally(() => {
        if (this.inFlight.get(dir) === call) this.inFlight.delete(dir);
      });
    }
    const pending = raw;
    const s = await probe(() => pending, this.timeoutMs);
    if (!s) return null;
    const totalBytes = wholeNonNegative(s.blocks * s.bsize);
    const freeBytes = wholeNonNegative(s.bavail * s.bsize);
    if (totalBytes === null || freeBytes === null) return null;
    return { path: dir.slice(0, 4096), totalBytes, freeBytes: Math.min(freeBytes, totalBytes) };
  }
}

const diskUsageReader = new DiskUsageReader();

/** DiskUsageReader.read, with the one reader of the process. */
export function readDiskUsage(dir: string): Promise<DiskUsage | null> {
  return diskUsageReader.read(dir);
}

/**
 * Read once at start. diskBytes and diskFreeBytes are those of the filesystem holding
 * /var/lib/docker (normally the root filesystem), else the largest one, as they were at start:
 * never refreshed. The node conditions carry the live figures of the filesystems that matter
 * (the agent's data dir, the engine's storage as the engine names it).
 */
export async function readDeviceFacts(runtimeVersion: string): Promise<NodeFacts> {
  const [osInfo, mem, filesystems] = await Promise.all([probe(() => si.osInfo()), probe(() => si.mem()), probe(() => si.fsSize())]);

  const distro = osInfo?.distro?.trim() ?? '';
  const release = osInfo?.release?.trim() ?? '';
  const kernel = osInfo?.kernel?.trim() || os.release();
  const distroText = [distro, release].filter((s) => s !== '' && s !== 'unknown').join(' ');
  const osRelease = distroText !== '' ? `${distroText} (kernel ${kernel})` : kernel;

  const fs = filesystems ? pickFilesystem(filesystems) : null;
  const disk = fs ? { total: wholeNonNegative(fs.size) ?? 0, free: wholeNonNegative(fs.available) ?? 0 } : await diskFallback();

  return {
    hostname: clip(os.hostname(), MAX_LENGTH.hostname),
    // The platform ("linux"), not the distribution: placement constraints say `node.os == linux`.
    os: clip(process.platform, MAX_LENGTH.os),
    osRelease: clip(osRelease, MAX_LENGTH.osRelease),
    arch: clip(process.arch, MAX_LENGTH.arch),
    // os.cpus() can be empty on some ARM kernels; availableParallelism never is.
    cpus: os.cpus().length || os.availableParallelism(),
    memoryBytes: wholeNonNegative(mem?.total) || os.totalmem(),
    diskBytes: disk.total,
    diskFreeBytes: Math.min(disk.free, disk.total),
    agentVersion: clip(TETHER_VERSION, MAX_LENGTH.agentVersion),
    runtime: clip(runtimeVersion, MAX_LENGTH.runtime),
  };
}

/** Bridges the engine makes for containers: their addresses are not reachable from other machines. */
const CONTAINER_BRIDGE_RE = /^(docker\d*|br-[0-9a-f]+|veth.*)$/;

/** The first non-internal IPv4 address: what other machines most likely reach this one at. */
export function defaultAdvertiseAddress(): string | null {
  for (const [name, addresses] of Object.entries(os.networkInterfaces())) {
    if (CONTAINER_BRIDGE_RE.test(name)) continue;
    for (const a of addresses ?? []) {
      // Node 18.0-18.3 reported family as the number 4.
      if ((a.family === 'IPv4' || (a.family as unknown) === 4) && !a.internal) return a.address;
    }
  }
  return null;
}
