/**
 * What a frame the WebSocket layer itself refuses (too large, not UTF-8, a broken frame) does: it
 * closes that connection only, with a close code and a reason the agent can log, and the hub and
 * every other agent go on.
 */
import { connect } from 'node:net';
import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROTOCOL_LIMITS } from '../../shared/protocol.js';
import { readResponseHead, upgradeRequest } from '../helpers/raw-upgrade.js';
import { SimFleet, helloFrame } from '../helpers/sim-fleet.js';

let fleet: SimFleet;

beforeEach(async () => {
  fleet = await SimFleet.start();
});
afterEach(async () => {
  await fleet.close();
});

async function credentialFor(name: string): Promise<string> {
  const { token } = await fleet.hub.nodes.createJoinToken(60);
  return (await fleet.hub.nodes.join(token, name, {}))!.credential;
}

async function connected(credential: string): Promise<WebSocket> {
  const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${credential}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

/** A masked client frame of any opcode and payload, for frames the ws client would never send. */
function rawFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length > 125) throw new Error('short frames only');
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

/** Upgrades a raw socket, sends `bytes`, and reads the hub's close frame: its code and reason. */
async function closeAfterRaw(credential: string, bytes: Buffer): Promise<{ code: number; reason: string }> {
  const { port } = new URL(fleet.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(upgradeRequest({ credential }));
  const { status } = await readResponseHead(socket);
  expect(status).toBe(101);
  const frame = new Promise<Buffer>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk)));
  socket.write(bytes);
  const close = await frame;
  socket.destroy();
  // An unmasked server frame: opcode 8, a short length, the code, then the reason.
  expect(close[0]! & 0x0f).toBe(8);
  const length = close[1]! & 0x7f;
  return { code: close.readUInt16BE(2), reason: close.subarray(4, 2 + length).toString('utf8') };
}

describe('frames the WebSocket layer refuses', () => {
  it('an oversized frame closes that connection only, with 1009 and a reason naming the limit', async () => {
    const healthy = await fleet.addAgent();
    const ws = await connected(await credentialFor('big'));
    const done = closed(ws);
    ws.send(JSON.stringify({ ...helloFrame('big'), name: 'x'.repeat(PROTOCOL_LIMITS.maxAgentFrameBytes) }));
    const { code, reason } = await done;
    expect(code).toBe(1009);
    expect(reason).toBe(`frame larger than the ${PROTOCOL_LIMITS.maxAgentFrameBytes} bytes the hub accepts`);
    expect(healthy.link.connected).toBe(true);
    expect((await fleet.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('a text frame that is not UTF-8 closes with 1007 and a reason', async () => {
    const healthy = await fleet.addAgent();
    const { code, reason } = await closeAfterRaw(await credentialFor('latin'), rawFrame(0x1, Buffer.from([0xc3, 0x28])));
    expect(code).toBe(1007);
    expect(reason).toMatch(/not valid UTF-8/);
    expect(healthy.link.connected).toBe(true);
  });

  it('a frame with an unknown opcode closes with 1002 and a reason', async () => {
    const healthy = await fleet.addAgent();
    const { code, reason } = await closeAfterRaw(await credentialFor('odd'), rawFrame(0x3, Buffer.from('x')));
    expect(code).toBe(1002);
    expect(reason).toMatch(/broken WebSocket frame/);
    expect(healthy.link.connected).toBe(true);
    // And a well-formed frame after all that still works for a new connection.
    const ws = await connected(await credentialFor('fine'));
    const welcome = new Promise<string>((resolve) => ws.once('message', (data) => resolve(data.toString())));
    ws.send(JSON.stringify(helloFrame('fine')));
    expect(JSON.parse(await welcome)).toMatchObject({ type: 'welcome' });
    ws.close();
  });
});
