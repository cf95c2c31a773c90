/**
 * Followed streams (`logs`, `events -f`) against a fake hub, printed to a stdout that asks to wait
 * after every write, as an asynchronous pipe to a reader that is not reading does: the CLI must
 * wait for 'drain' rather than queue the hub's stream in memory. And a device's words reach the
 * terminal as plain text.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/program.js';

const LINES = 300;
const EVENTS = 100;

/** A stdout that takes each write but asks to wait (false) until it drains on the next turn of the loop. */
class WaitingStdout extends EventEmitter {
  text = '';
  writes = 0;
  /** Writes made while it had asked to wait: what a paced writer never does. */
  writesWhileFull = 0;
  private full = false;
  constructor(private readonly onWrite: (out: WaitingStdout) => void = () => {}) {
    super();
  }
  write(text: string): boolean {
    if (this.full) this.writesWhileFull++;
    this.text += text;
    this.writes++;
    this.full = true;
    setImmediate(() => {
      this.full = false;
      this.emit('drain');
    });
    this.onWrite(this);
    return false;
  }
}

describe('tether on a stdout that asks to wait', () => {
  let server: http.Server;
  let hub = '';
  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const url = new URL(request.url!, 'http://hub');
      if (url.pathname === '/v1/services/web/logs') {
        response.writeHead(200, { 'content-type': 'application/x-ndjson' });
        // All in one write: the client gets them in one or a few chunks.
        const lines = Array.from({ length: LINES }, (_, i) => JSON.stringify({ replica: 'web.1a', node: 'n1', stream: 'stdout', line: `line ${i}` }));
        lines.push(JSON.stringify({ replica: 'web.2b', error: 'cannot read\u001b]0;pwned\u0007\nnext' }));
        response.end(`${lines.join('\n')}\n`);
        return;
      }
      if (url.pathname === '/v1/events') {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        const events = Array.from({ length: EVENTS }, (_, i) => `id: ${i + 1}\ndata: ${JSON.stringify({ seq: i + 1, time: '2026-12-01T00:00:00.000Z', type: 'service.updated', service: 'web' })}\n\n`);
        response.write(events.join('')); // and kept open, as a followed stream is
        return;
      }
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"no"}}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const io = (stdout: WaitingStdout, signal?: AbortSignal) => {
    const stderr = { text: '', write: (s: string) => ((stderr.text += s), true) };
    return {
      stderr,
      io: { stdout, stderr, stdin: Readable.from([]), env: {}, homeDir: path.join(os.tmpdir(), 'tether-paced-no-home'), ...(signal ? { signal } : {}) },
    };
  };

  it('logs: waits for each drain, prints every line, and an agent error as plain text', async () => {
    const stdout = new WaitingStdout();
    const { io: cliIo, stderr } = io(stdout);
    const code = await runCli(['--hub', hub, '--token', 't', 'logs', 'web'], cliIo);
    expect(stderr.text).toBe('web.2b | error: cannot read ]0;pwned next\ntether: the logs of 1 replica(s) could not be read: web.2b\n');
    expect(code).toBe(1);
    expect(stdout.writes).toBe(LINES);
    expect(stdout.text.split('\n')[LINES - 1]).toBe(`web.1a | line ${LINES - 1}`);
    expect(stdout.writesWhileFull).toBe(0);
  });

  it('events -f: waits for each drain', async () => {
    const controller = new AbortController();
    // Stopped (Ctrl-C) once every event is printed.
    const stdout = new WaitingStdout((out) => {
      if (out.writes === EVENTS) controller.abort();
    });
    const code = await runCli(['--hub', hub, '--token', 't', 'events', '-f'], io(stdout, controller.signal).io);
    expect(code).toBe(0);
    expect(stdout.writes).toBe(EVENTS);
    expect(stdout.writesWhileFull).toBe(0);
  });
});
