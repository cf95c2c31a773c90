import type { Command } from 'commander';
import type { HubClient } from './client.js';
import type { GlobalFlags } from './config.js';
import type { CliIo } from './io.js';

/** What each command file is given: the I/O, the global flags, and a client built from them. */
export interface CommandContext {
  io: CliIo;
  flags(command: Command): GlobalFlags;
  client(command: Command): Promise<HubClient>;
  nowMs(): number;
}
