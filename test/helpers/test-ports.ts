/**
 * Ports for the hubs, proxies and published containers of tests that run at once: vitest runs
 * files in parallel workers, and another run may share the machine. A port handed out here
 * - lies below Linux's ephemeral range (32768 and up), so no outgoing connection takes it, and a
 *   hub killed and restarted on it finds it free again;
 * - comes from this worker's own slice of that range (VITEST_POOL_ID), so two workers of one run
 *   never draw the same port;
 * - was free a moment ago (a listen on every IPv4 address succeeded), so what another process
 *   holds, on any loopback address, is skipped;
 * - was not handed out before by this process.
 * Another run may still take it between this probe and the hub's listen: the hub starter retries
 * on a port taken and checks that the hub answering is its own.
 */
import net from 'node:net';

export interface PortRange {
  first: number;
  /** Exclusive. */
  end: number;
}

/** Below the ephemeral range; above the ports services and registries here use (5000, 7070...). */
export const TEST_PORT_RANGE: PortRange = { first: 10_000, end: 32_000 };
/** Slices of the range, one per vitest worker (pool ids above this share a slice, probed apart). */
export const PORT_SLICES = 8;

/** This worker's slice: VITEST_POOL_ID counts workers from 1; outside vitest, the first slice. */
export function portSlice(poolId: string | undefined = process.env.VITEST_POOL_ID): PortRange {
  const id = Number(poolId);
  const index = Number.isInteger(id) && id >= 1 ? (id - 1) % PORT_SLICES : 0;
  const size = Math.floor((TEST_PORT_RANGE.end - TEST_PORT_RANGE.first) / PORT_SLICES);
  const first = TEST_PORT_RANGE.first + index * size;
  return { first, end: first + size };
}

const handedOut = new Set<number>();
/** Where the next search starts in each slice: a random place at first, so that files run one after another in a worker do not all begin with the same ports. */
const cursors = new Map<number, number>();

/** Whether nothing listens on `port` on any IPv4 address: a listen on 0.0.0.0 fails if anything does. */
export function isPortFree(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(false);
      else reject(error);
    });
    probe.listen({ port, host }, () => probe.close(() => resolve(true)));
  });
}

function nextInSlice(slice: PortRange): number {
  const size = slice.end - slice.first;
  const cursor = cursors.get(slice.first) ?? Math.floor(Math.random() * size);
  cursors.set(slice.first, cursor + 1);
  return slice.first + (cursor % size);
}

/** A port of this worker's slice that nothing listens on and this process never handed out. */
export async function freePort(slice: PortRange = portSlice()): Promise<number> {
  for (let tried = 0; tried < slice.end - slice.first; tried++) {
    const port = nextInSlice(slice);
    if (handedOut.has(port)) continue;
    // Claimed before the probe: two calls at once never get the same port.
    handedOut.add(port);
    if (await isPortFree(port)) return port;
  }
  throw new Error(`no free port left in ${slice.first}-${slice.end - 1}`);
}

/**
 * A port of this worker's slice not handed out before, without the probe (for callers that cannot
 * wait): prefer freePort.
 */
export function unprobedPort(slice: PortRange = portSlice()): number {
  for (let tried = 0; tried < slice.end - slice.first; tried++) {
    const port = nextInSlice(slice);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no port left in ${slice.first}-${slice.end - 1}`);
}
