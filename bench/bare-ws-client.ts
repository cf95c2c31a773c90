/**
 * The reference for one agent's footprint: a bare Node process holding one `ws` connection and
 * doing on it what an idle agent does (a heartbeat frame every interval, and a ping when the
 * server said nothing since the previous one), nothing else.
 *
 * Usage: node dist/bench/bare-ws-client.js --url ws://127.0.0.1:PORT/ [--heartbeat-ms 5000]
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { HEARTBEAT_FRAME } from './fleet-messages.js';

const { values: args } = parseArgs({ options: { url: { type: 'string' }, 'heartbeat-ms': { type: 'string' } }, strict: true });
if (!args.url) {
  process.stderr.write('bare-ws-client: --url is required\n');
  process.exit(2);
}
const heartbeatMs = Number(args['heartbeat-ms'] ?? 5000);

const ws = new WebSocket(args.url, { perMessageDeflate: false, maxPayload: 32 * 1024 * 1024, handshakeTimeout: 15_000 });
// Mirrors HubLink: a ping only when the server said nothing (no message, no pong) since the previous tick.
let lastServerActivityMs = performance.now();
let lastTickMs = performance.now();
const heard = () => (lastServerActivityMs = performance.now());
ws.on('message', heard);
ws.on('pong', heard);
ws.on('open', () => {
  process.stdout.write('connected\n');
  lastTickMs = performance.now();
  setInterval(() => {
    ws.send(HEARTBEAT_FRAME);
    const heardSinceLastTick = lastServerActivityMs > lastTickMs;
    lastTickMs = performance.now();
    if (!heardSinceLastTick) ws.ping();
  }, heartbeatMs);
});
ws.on('error', (error) => {
  process.stderr.write(`bare-ws-client: ${error.message}\n`);
  process.exit(1);
});
ws.on('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
