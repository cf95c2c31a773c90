/**
 * What the benchmarks read about a process from outside it, through /proc (Linux only): resident
 * memory, CPU time and bytes written. Nothing here needs the measured program's cooperation.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
let ticksPerSecond: number | null = null;
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** VmRSS of a process in bytes, or null once it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** User + system CPU time a process has used so far, in seconds, or null once it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: the fields we want follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Field 3 (state) is fields[0]; utime is field 14 and stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return null;
  }
}

/** /proc/<pid>/io: write_bytes counts bytes the process caused to be sent to storage (page cache dirtied). */
export function ioCounters(pid: number): { writeBytes: number; wchar: number; syscw: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    const get = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { writeBytes: get('write_bytes'), wchar: get('wchar'), syscw: get('syscw') };
  } catch {
    return null;
  }
}

/** Busy and total CPU time of the whole machine so far, in seconds (from /proc/stat). */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / clockTicks(), total: total / clockTicks() };
}

/**
 * CPU use of some processes over a window, as % of one core, and what the rest of the machine
 * used meanwhile (other engineers' tests, say), so a figure taken on a busy machine says so.
 */
export class CpuWindow {
  private readonly startMs = performance.now();
  private readonly start: Map<number, number>;
  private readonly machineStart = machineCpuSeconds();

  constructor(private readonly pids: number[]) {
    this.start = new Map(pids.map((pid) => [pid, cpuSeconds(pid) ?? 0]));
  }

  finish(): { seconds: number; pct: Map<number, number>; othersPct: number } {
    const seconds = (performance.now() - this.startMs) / 1000;
    const pct = new Map<number, number>();
    let ours = 0;
    for (const pid of this.pids) {
      const used = (cpuSeconds(pid) ?? this.start.get(pid)!) - this.start.get(pid)!;
      ours += used;
      pct.set(pid, (100 * used) / seconds);
    }
    const machine = machineCpuSeconds();
    const othersPct = (100 * Math.max(0, machine.busy - this.machineStart.busy - ours)) / seconds;
    return { seconds, pct, othersPct };
  }
}

export interface MachineFacts {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  loadAvg: number[];
}

export function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** The commit the run measured, and whether the working tree had changes on top of it. */
export function gitState(cwd: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean).length;
    return dirty > 0 ? `${head} + uncommitted changes in ${dirty} tracked files` : head;
  } catch {
    return 'unknown';
  }
}
