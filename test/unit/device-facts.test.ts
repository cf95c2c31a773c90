import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultAdvertiseAddress, readDeviceFacts, readDiskUsage } from '../../agent/device-facts.js';
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
});
