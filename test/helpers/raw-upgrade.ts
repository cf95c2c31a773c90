/**
 * Raw TCP clients of the hub's agent endpoint, for tests that must misbehave where a WebSocket
 * library never would: reset right after the request, hold a handshake without hello, read
 * nothing while the hub writes.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';
import { AGENT_PATH } from '../../shared/protocol.js';

export interface HubAddress {
  host: string;
  port: number;
}

/**
 * Connects from `localAddress` (another loopback address stands for another device). With
 * `allowHalfOpen` the client never closes its side by itself, as a careless or hostile one may not.
 */
export function connectRaw(hub: HubAddress, localAddress = '127.0.0.1', opts: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hub.host, port: hub.port, localAddress, allowHalfOpen: opts.allowHalfOpen ?? false });
    // Every raw socket here may be reset by either end; its errors are part of the test.
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export function upgradeRequest(opts: { path?: string; credential?: string } = {}): string {
  const lines = [
    `GET ${opts.path ?? AGENT_PATH} HTTP/1.1`,
    'Host: hub',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (opts.credential) lines.push(`Authorization: Bearer ${opts.credential}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The status line and headers of the hub's answer; the socket stays as it is. */
export function readResponseHead(socket: net.Socket, timeoutMs = 5000): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no response head within ${timeoutMs} ms: ${JSON.stringify(buf)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) done(null, buf.slice(0, end));
    };
    const onClose = () => done(new Error(`closed before a response head: ${JSON.stringify(buf)}`));
    const done = (error: Error | null, head?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head!)?.[1] ?? 0), head: head! });
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** Sends an upgrade request and returns the status the hub answered with. */
export async function upgradeStatus(hub: HubAddress, opts: { path?: string; credential?: string; localAddress?: string } = {}): Promise<number> {
  const socket = await connectRaw(hub, opts.localAddress);
  try {
    socket.write(upgradeRequest(opts));
    return (await readResponseHead(socket)).status;
  } finally {
    socket.destroy();
  }
}

/** An upgraded connection that never says hello: it holds a handshake slot until closed. */
export async function holdHandshake(hub: HubAddress, credential: string, localAddress?: string): Promise<net.Socket> {
  const socket = await connectRaw(hub, localAddress);
  socket.write(upgradeRequest({ credential }));
  const { status } = await readResponseHead(socket);
  if (status !== 101) {
    socket.destroy();
    throw new Error(`expected 101, got ${status}`);
  }
  return socket;
}

/** A client-to-server WebSocket text frame (masked, as a client must send it). */
export function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const len = payload.length;
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    header[0] = 0x81;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

/**
 * What an agent does on one attempt: upgrade with its credential, hello, wait for the welcome.
 * Returns the welcome, or the HTTP status the upgrade was refused with. The connection is closed.
 */
export async function helloOnce(
  hub: HubAddress,
  credential: string,
  hello: object,
  localAddress?: string,
): Promise<{ welcomed: true } | { welcomed: false; status: number }> {
  const ws = new WebSocket(`ws://${hub.host}:${hub.port}${AGENT_PATH}`, {
    headers: { authorization: `Bearer ${credential}` },
    ...(localAddress ? { localAddress } : {}),
  });
  ws.on('error', () => undefined);
  try {
    return await new Promise((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify(hello)));
      ws.once('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string };
        if (frame.type === 'welcome') resolve({ welcomed: true });
        else reject(new Error(`expected welcome, got ${frame.type}`));
      });
      ws.once('unexpected-response', (_req, res) => resolve({ welcomed: false, status: res.statusCode ?? 0 }));
      ws.once('close', (code, reason) => reject(new Error(`closed before welcome: ${code} ${reason.toString()}`)));
    });
  } finally {
    ws.terminate();
  }
}
