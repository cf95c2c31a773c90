import os from 'node:os';
import { describe, expect, it } from 'vitest';
import type { StatsFs } from 'node:fs';
import { defaultAdvertiseAddress, DiskUsageReader, readDeviceFacts, readDiskUsage } from '../../agent/device-facts.js';
import { NodeFactsSchema } from '../../shared/protocol.js';
import { Validator } from '../../shared/validation.js';
import { TETHER_VERSION } from '../../shared/version.js';

describe('device facts', () => {
  it('match the protocol schema and describe this machine', async () => {
    const startedMs = Date.now();
    const facts = await readDeviceFacts('docker 20.10.24');
    expect(Date.now() - startedMs).toBeLessThan(5_000);

    const checked = new Validator(NodeFactsSchema).validate(facts);
    expect(checked.ok ? [] : checked.errors).toEqual([]);

    expect(facts.hostname).toBe(os.hostname());
    expect(facts.os).toBe(process.platform);
    expect(facts.arch).toBe(process.arch);
    expect(facts.osRelease.length).toBeGreaterThan(0);
    expect(facts.cpus).toBeGreaterThanOrEqual(1);
    // Within 10% of what the kernel says: systeminformation and node:os read the same source.
    expect(Math.abs(facts.memoryBytes - os.totalmem())).toBeLessThan(os.totalmem() / 10);
    expect(facts.diskBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(facts.diskFreeBytes).toBeGreaterThan(0);
    expect(facts.diskFreeBytes).toBeLessThanOrEqual(facts.diskBytes);
    expect(facts.agentVersion).toBe(TETHER_VERSION);
    expect(facts.runtime).toBe('docker 20.10.24');
  });

  it('keeps over-long strings within the schema', async () => {
    const facts = await readDeviceFacts(`docker ${'9'.repeat(500)}`);
    expect(facts.runtime).toHaveLength(128);
    expect(new Validator(NodeFactsSchema).check(facts)).toBe(true);
  });

  it('picks a non-internal IPv4 address to advertise, if there is one', () => {
    const address = defaultAdvertiseAddress();
    const external = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    if (external.length === 0) expect(address).toBeNull();
    else expect(external).toContain(address);
  });
});

describe('disk usage', () => {
  it('describes the filesystem holding a directory, and is null for a path the agent cannot see', async () => {
    const usage = await readDiskUsage(os.tmpdir());
    expect(usage?.path).toBe(os.tmpdir());
    expect(usage!.totalBytes).toBeGreaterThan(0);
    expect(usage!.freeBytes).toBeLessThanOrEqual(usage!.totalBytes);
    expect(await readDiskUsage('/no/such/dir/for/tether')).toBeNull();
  });

  it('starts no second statfs of a path while one hangs (each holds a thread for good), and reads it as null meanwhile', async () => {
    const calls: string[] = [];
    let answer: (s: StatsFs) => void = () => {};
    const statfs = (path: string) => {
      calls.push(path);
      if (path === '/hung' && calls.length === 1) return new Promise<StatsFs>((resolve) => (answer = resolve));
      return Promise.resolve({ blocks: path === '/hung' ? 10 : 100, bsize: 4096, bavail: path === '/hung' ? 10 : 50 } as StatsFs);
    };
    const reader = new DiskUsageReader({ statfs, timeoutMs: 20 });
    expect(await reader.read('/hung')).toBeNull();
    expect(await reader.read('/hung')).toBeNull();
    expect(await reader.read('/ok')).toMatchObject({ totalBytes: 409_600, freeBytes: 204_800 });
    expect(calls).toEqual(['/hung', '/ok']);
    // Once it answers, the next read asks again.
    answer({ blocks: 10, bsize: 4096, bavail: 10 } as StatsFs);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await reader.read('/hung')).toMatchObject({ totalBytes: 40_960 });
    expect(calls).toEqual(['/hung', '/ok', '/hung']);
  });
});
