/**
 * The raw baseline of the fleet benchmark: a bare `ws` server that accepts the same connections
 * as the hub (an HTTP server upgrading on request, no compression, no client tracking, the same
 * frame limit) and JSON.parses every frame, and does nothing else. The hub's figures are read
 * against this one's, measured in the same run, on the same machine, the same way.
 *
 * Usage: node dist/bench/baseline-server.js [--port N] [--host ADDR]
 * Prints `listening <port>` once ready. With an IPC channel it answers {cmd:'stats'} with its
 * counters and exits when the parent goes away.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer, type RawData } from 'ws';

const { values: args } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } }, strict: true });
const port = Number(args.port ?? 0);
const host = args.host ?? '127.0.0.1';

let connections = 0;
let frames = 0;
let badFrames = 0;

const server = http.createServer((_req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false, clientTracking: false });
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    connections++;
    ws.on('message', (data: RawData) => {
      try {
        const value = JSON.parse((Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8')) as { type?: unknown };
        if (typeof value.type === 'string') frames++;
        else badFrames++;
      } catch {
        badFrames++;
      }
    });
    ws.on('close', () => connections--);
    ws.on('error', () => undefined);
  });
});

server.listen(port, host, () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  process.stdout.write(`listening ${actual}\n`);
  process.send?.({ type: 'listening', port: actual });
});

process.on('message', (msg: { cmd?: string }) => {
  if (msg.cmd === 'stats') process.send?.({ type: 'stats', connections, frames, badFrames });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
