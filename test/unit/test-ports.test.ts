/** The ports tests hand to their hubs and proxies: never one another process holds, never one twice. */
import net from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { PORT_SLICES, TEST_PORT_RANGE, freePort, isPortFree, portSlice, unprobedPort } from '../helpers/test-ports.js';

const held: net.Server[] = [];
afterEach(async () => {
  await Promise.all(held.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function hold(port: number, host: string): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, resolve);
  });
  held.push(server);
}

it('gives each vitest worker its own slice, below the ephemeral range', () => {
  const slices = Array.from({ length: PORT_SLICES }, (_, i) => portSlice(String(i + 1)));
  for (const [i, a] of slices.entries()) {
    expect(a.first).toBeGreaterThanOrEqual(TEST_PORT_RANGE.first);
    expect(a.end).toBeLessThanOrEqual(32_768);
    expect(a.end - a.first).toBeGreaterThan(1000);
    for (const b of slices.slice(i + 1)) expect(a.end <= b.first || b.end <= a.first).toBe(true);
  }
  // More workers than slices share one, told apart by the probe; outside vitest, the first.
  expect(portSlice(String(PORT_SLICES + 1))).toEqual(slices[0]);
  expect(portSlice('')).toEqual(slices[0]);
});

it.each(['127.0.0.1', '127.0.0.2'])('never hands out a port held on %s, nor one port twice', async (host) => {
  const port = await freePort();
  await hold(port, host);
  // A fresh copy of the module, as another process would have: it never handed that port out.
  vi.resetModules();
  const fresh = await import('../helpers/test-ports.js');
  expect(await isPortFree(port)).toBe(false);
  // A slice of five ports around the held one: only the four others can come out, once each.
  const slice = { first: port - 2, end: port + 3 };
  const expected: number[] = [];
  for (let p = slice.first; p < slice.end; p++) if (p !== port && (await isPortFree(p))) expected.push(p);
  const got: number[] = [];
  for (let i = 0; i < 5; i++) {
    try {
      got.push(await fresh.freePort(slice));
    } catch (error) {
      expect(String(error)).toMatch(/no free port left/);
    }
  }
  expect(got.sort((a, b) => a - b)).toEqual(expected);
  expect(got).not.toContain(port);
});

it('hands out distinct ports to calls made at once', async () => {
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  expect(new Set(ports).size).toBe(20);
  const mine = portSlice();
  for (const p of ports) expect(p >= mine.first && p < mine.end).toBe(true);
  // The unprobed kind skips them too.
  expect(ports).not.toContain(unprobedPort());
});
