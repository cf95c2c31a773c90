/**
 * No one client can take the hub's handshake pool: a credential holds at most one pending
 * handshake, an address at most its share, and upgrades that are refused cost nothing lasting.
 * The hub in process, attackers on raw sockets, honest agents as real WebSocket clients.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../shared/protocol.js';
import { connectRaw, helloOnce, holdHandshake, maskedTextFrame, readResponseHead, upgradeRequest, upgradeStatus } from '../helpers/raw-upgrade.js';
import { SimFleet, helloFrame } from '../helpers/sim-fleet.js';

const hello = (name: string) => helloFrame(name);

/** The close code of the first frame the hub sends on a raw upgraded socket, if it is a close frame. */
function closeCodeFrom(socket: net.Socket): Promise<number> {
  return new Promise((resolve) => {
    socket.once('data', (frame: Buffer) => resolve(frame[0] === 0x88 && frame.length >= 4 ? frame.readUInt16BE(2) : -1));
  });
}

describe('handshake admission', () => {
  let fleet: SimFleet;
  const held: net.Socket[] = [];
  const hub = () => ({ host: '127.0.0.1', port: Number(new URL(fleet.url).port) });
  const credentialFor = async (name: string) => {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    return (await fleet.hub.nodes.join(token, name, {}))!.credential;
  };
  /** Holds a handshake open without hello, or returns the status it was refused with. */
  const attempt = async (credential: string, localAddress?: string): Promise<number> => {
    try {
      held.push(await holdHandshake(hub(), credential, localAddress));
      return 101;
    } catch (error) {
      return Number(/expected 101, got (\d+)/.exec((error as Error).message)?.[1] ?? 0);
    }
  };

  afterEach(async () => {
    for (const socket of held.splice(0)) socket.destroy();
    await fleet?.close();
  });

  it('lets one credential hold one pending handshake at most: a newer upgrade ends the older one, and other nodes get in at once', async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 4 });
    const stolen = await credentialFor('stolen');
    const statuses: number[] = [];
    const closes: Promise<number>[] = [];
    for (let i = 0; i < 30; i++) {
      statuses.push(await attempt(stolen));
      if (statuses[i] === 101) closes.push(closeCodeFrom(held.at(-1)!));
    }
    // Every attempt of the node is served (the newest one is the one its agent waits for) ...
    expect(statuses.every((s) => s === 101)).toBe(true);
    // ... and each ended the one before it, so the node never holds more than one slot.
    expect(await Promise.all(closes.slice(0, -1))).toEqual(Array(29).fill(CloseCode.replaced));
    expect(fleet.hub.gateway.pendingHandshakeCount).toBe(1);

    // Other nodes, from the same address, get in on their first attempt while the last one is held.
    for (const name of ['a', 'b', 'c']) expect(await helloOnce(hub(), await credentialFor(name), hello(name))).toEqual({ welcomed: true });
    expect(fleet.hub.gateway.refusedBusy).toBe(0);
  });

  it('lets one address hold its share of the pool at most, so an agent from another address gets in at once', async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 4 });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push(await attempt(await credentialFor(`flood-${i}`), '127.0.0.1'));
    // Three quarters of the pool by default.
    expect(statuses.filter((s) => s === 101)).toHaveLength(3);
    expect(statuses.filter((s) => s === 503)).toHaveLength(9);

    expect(await helloOnce(hub(), await credentialFor('honest'), hello('honest'), '127.0.0.2')).toEqual({ welcomed: true });
    // The greedy address's refusals are its own: they did not count as the hub being busy.
    expect(fleet.hub.gateway.refusedBusy).toBe(0);
    expect(fleet.hub.gateway.refusedAddressBusy).toBe(9);
  });

  it("leaves a node's pending handshake alone when a newer upgrade of it is refused", async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 4 });
    const node = await credentialFor('node');
    expect(await attempt(node, '127.0.0.2')).toBe(101);
    const older = held.at(-1)!;
    let olderClosed = false;
    older.once('close', () => (olderClosed = true));
    for (let i = 0; i < 3; i++) expect(await attempt(await credentialFor(`flood-${i}`), '127.0.0.1')).toBe(101);
    // The newer upgrade comes from an address holding its share: refused, and nothing else changes.
    expect(await upgradeStatus(hub(), { credential: node, localAddress: '127.0.0.1' })).toBe(503);
    expect(fleet.hub.gateway.handshakesSuperseded).toBe(0);
    const welcome = new Promise<string>((resolve) => older.once('data', (frame: Buffer) => resolve(frame.subarray(2).toString())));
    older.write(maskedTextFrame(JSON.stringify(hello('node'))));
    expect(JSON.parse(await welcome)).toMatchObject({ type: 'welcome' });
    expect(olderClosed).toBe(false);
  });

  it("tells agents refused for their address's share a Retry-After from that address's load, not anyone else's", async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 4 });
    for (let i = 0; i < 3; i++) expect(await attempt(await credentialFor(`flood-${i}`), '127.0.0.1')).toBe(101);
    expect(await attempt(await credentialFor('other'), '127.0.0.2')).toBe(101);
    // Many agents behind the one address retrying at once (one credential stands for them all).
    const behindNat = await credentialFor('behind-nat');
    const retryAfter = async (credential: string, localAddress: string): Promise<{ status: number; retryAfterS: number }> => {
      const socket = await connectRaw(hub(), localAddress);
      try {
        socket.write(upgradeRequest({ credential }));
        const { status, head } = await readResponseHead(socket);
        return { status, retryAfterS: Number(/^Retry-After: (\d+)$/im.exec(head)?.[1] ?? 0) };
      } finally {
        socket.destroy();
      }
    };
    const answers = await Promise.all(Array.from({ length: 400 }, () => retryAfter(behindNat, '127.0.0.1')));
    expect(answers.every((a) => a.status === 503 && a.retryAfterS >= 1)).toBe(true);
    expect(Math.max(...answers.map((a) => a.retryAfterS))).toBeGreaterThan(1);
    // An agent refused because the whole pool is in use is not told to wait for that address's queue.
    expect(await retryAfter(await credentialFor('elsewhere'), '127.0.0.3')).toEqual({ status: 503, retryAfterS: 1 });
  });

  it('still bounds the pool as a whole across addresses', async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 4 });
    for (const address of ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']) expect(await attempt(await credentialFor(address + Math.random()), address)).toBe(101);
    expect(await upgradeStatus(hub(), { credential: await credentialFor('late'), localAddress: '127.0.0.3' })).toBe(503);
    expect(fleet.hub.gateway.refusedBusy).toBe(1);
  });

  it('frees the slot of an authenticated upgrade the WebSocket layer refuses as malformed', async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 1 });
    const credential = await credentialFor('sloppy');
    for (let i = 0; i < 5; i++) {
      const socket = await connectRaw(hub());
      held.push(socket);
      // No Sec-WebSocket-Key: refused after admission, by the WebSocket layer.
      socket.write(upgradeRequest({ credential }).replace(/Sec-WebSocket-Key: .*\r\n/, ''));
      expect((await readResponseHead(socket)).status).toBe(400);
    }
    await vi.waitFor(() => expect(fleet.hub.gateway.pendingHandshakeCount).toBe(0), { timeout: 5_000, interval: 20 });
    expect(await helloOnce(hub(), await credentialFor('honest'), hello('honest'))).toEqual({ welcomed: true });
  });

  it('ends handshakes still waiting for hello when the hub shuts down, rather than waiting for them', async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 4 });
    const socket = await attempt(await credentialFor('waiting')).then(() => held.at(-1)!);
    const code = closeCodeFrom(socket);
    const closing = fleet.app.close();
    expect(await code).toBe(CloseCode.goingAway);
    await closing;
  });

  it('gives an unauthenticated upgrade no slot, and leaves no socket of a refused upgrade open', async () => {
    fleet = await SimFleet.start({ maxPendingHandshakes: 1 });
    const connections = () => new Promise<number>((resolve, reject) => fleet.app.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
    const before = await connections();
    // Clients that read the refusal but never close their side of the connection.
    const refused: net.Socket[] = [];
    for (let i = 0; i < 40; i++) {
      const socket = await connectRaw(hub(), '127.0.0.1', { allowHalfOpen: true });
      refused.push(socket);
      held.push(socket);
      socket.write(upgradeRequest(i % 2 ? { credential: 'tnc_nobody.AAAAAAAAAAAAAAAAAAAAAAAA' } : { path: '/elsewhere' }));
      expect([401, 404]).toContain((await readResponseHead(socket)).status);
    }
    // The hub closes its end once it has answered: no half-open socket per refusal.
    await vi.waitFor(async () => expect(await connections()).toBe(before), { timeout: 5_000, interval: 50 });
    expect(fleet.hub.gateway.pendingHandshakeCount).toBe(0);
    expect(await helloOnce(hub(), await credentialFor('honest'), hello('honest'))).toEqual({ welcomed: true });
  });
});
