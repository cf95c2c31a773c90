/** The hub program refuses timings that cannot work, at start, with one line naming the flags. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startProgram, stopProgram, type Proc } from '../helpers/processes.js';

let hub: Proc | undefined;
let dir = '';
afterEach(async () => {
  await stopProgram(hub);
  hub = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

it.each([
  [['--startup-grace-ms', '5000'], /^tether-hub: --startup-grace-ms 5000 must be at least 30000, the agents' reconnect backoff cap/m],
  [['--heartbeat-interval-ms', '5000', '--heartbeat-grace-ms', '8000'], /^tether-hub: --heartbeat-grace-ms 8000 must be more than twice --heartbeat-interval-ms 5000/m],
  [['--lost-after-ms', '5000'], /^tether-hub: --lost-after-ms 5000 must be at least --heartbeat-grace-ms 15000/m],
  [['--disruption-percent', '0'], /^tether-hub: --disruption-percent must be an integer from 1 to 100, got "0"/m],
  [
    ['--max-pending-handshakes', '10', '--max-pending-handshakes-per-address', '11'],
    /^tether-hub: --max-pending-handshakes-per-address \(11\) cannot be more than --max-pending-handshakes \(10\)/m,
  ],
  [['--max-pending-handshakes-per-address', '0'], /^tether-hub: --max-pending-handshakes-per-address must be an integer >= 1, got "0"/m],
])('refuses %j with exit code 2', async (flags, message) => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hub-settings-'));
  // Port 0: refused before it listens; were it to start anyway, on a port no other test holds.
  hub = startProgram('hub', ['--port', '0', '--data-dir', dir, '--insecure-http', ...flags]);
  expect(await hub.exited).toBe(2);
  expect(hub.output()).toMatch(message);
});
