#!/usr/bin/env node
/** `tether`: the operator's command line. The only place that exits the process. */
import os from 'node:os';
import { runCli } from './program.js';

const controller = new AbortController();
// Ctrl-C ends a followed stream (logs -f, events -f) cleanly; a second one ends the process at once.
process.once('SIGINT', () => {
  controller.abort();
  process.once('SIGINT', () => process.exit(130));
});
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  // `tether logs -f web | head`: the reader has gone; so has the point of going on.
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  homeDir: os.homedir(),
  signal: controller.signal,
});
process.exitCode = controller.signal.aborted ? 130 : code;
