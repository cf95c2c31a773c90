import type { Command } from 'commander';
import { CliError } from '../cli-error.js';
import type { CommandContext } from '../command-context.js';
import { wholeNumber } from '../option-values.js';
import { plainText } from '../output.js';
import { writePaced } from '../paced-write.js';
import { streamLines } from '../stream-lines.js';
import { servicePath } from './services.js';

/** One line of the hub's NDJSON log stream (contracts: logs). */
interface LogEntry {
  replica?: string;
  node?: string;
  stream?: string;
  time?: string;
  line?: string;
  error?: string;
}

/**
 * `web` is a service; `web.3f0c2a1b9d` one replica of it (replica ids are the service's name, a
 * dot and hex, and service names have no dots).
 */
export function logTarget(ref: string): { service: string; replica?: string } {
  const dot = ref.indexOf('.');
  return dot === -1 ? { service: ref } : { service: ref.slice(0, dot), replica: ref };
}

export function registerLogs(program: Command, ctx: CommandContext): void {
  program
    .command('logs')
    .description("a service's or one replica's container logs, each line as `replica | line`")
    .argument('<target>', 'a service, or a replica id (service.hex)')
    .option('-f, --follow', 'keep printing new lines until interrupted')
    .option('--tail <n>', 'lines from the end of each replica log (hub default 100)', wholeNumber(0, 10_000))
    .option('-t, --timestamps', 'print the time of each line')
    .action(async (ref: string, options: { follow?: boolean; tail?: number; timestamps?: boolean }, command: Command) => {
      const { service, replica } = logTarget(ref);
      const client = await ctx.client(command);
      const json = ctx.flags(command).json;
      const response = await client.open(
        `${servicePath(service)}/logs`,
        { follow: options.follow ? 1 : undefined, tail: options.tail, replica, timestamps: options.timestamps ? 1 : undefined },
        'application/x-ndjson',
      );
      const unreadable: string[] = [];
      try {
        for await (const text of streamLines(response, `the log stream of ${ref}`, ctx.io.signal)) {
          if (text === '') continue;
          if (json) {
            await writePaced(ctx.io.stdout, `${text}\n`, ctx.io.signal);
            continue;
          }
          let entry: LogEntry;
          try {
            entry = JSON.parse(text) as LogEntry;
          } catch {
            throw new CliError(`the hub sent a log line that is not JSON: ${text.slice(0, 120)}`);
          }
          const who = entry.replica ?? '?';
          if (entry.error !== undefined) {
            unreadable.push(who);
            // The agent's words, not the container's output: plain text, whatever a hostile device sends.
            ctx.io.stderr.write(`${plainText(`${who} | error: ${entry.error}`)}\n`);
            continue;
          }
          const time = options.timestamps && entry.time ? `${entry.time} ` : '';
          await writePaced(ctx.io.stdout, `${who} | ${time}${entry.line ?? ''}\n`, ctx.io.signal);
        }
      } finally {
        response.destroy();
      }
      if (unreadable.length > 0) throw new CliError(`the logs of ${unreadable.length} replica(s) could not be read: ${unreadable.slice(0, 5).join(', ')}`);
    });
}
