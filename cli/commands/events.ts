import type { Command } from 'commander';
import { CliError } from '../cli-error.js';
import { printJson, renderTable } from '../output.js';
import { wholeNumber, type CommandContext } from '../program.js';
import { SseParser } from '../sse.js';
import { streamLines } from '../stream-lines.js';

/** An event as the hub shows it (contracts: events). */
export interface HubEvent {
  seq: number;
  time: string;
  type: string;
  service?: string;
  replica?: string;
  node?: string;
  nodeName?: string;
  message?: string;
}

const HEADERS = ['seq', 'time', 'type', 'service', 'replica', 'node', 'message'];
const row = (e: HubEvent) => [e.seq, e.time, e.type, e.service, e.replica, e.nodeName ?? e.node, e.message];

/** One followed event on one line: no table can be aligned over a stream. */
export function eventLine(e: HubEvent): string {
  const subject = [e.service && `service=${e.service}`, e.replica && `replica=${e.replica}`, e.node && `node=${e.nodeName ?? e.node}`].filter(Boolean).join(' ');
  return `${e.time}  ${e.type}${subject ? `  ${subject}` : ''}${e.message ? `  ${e.message}` : ''}\n`;
}

export function registerEvents(program: Command, ctx: CommandContext): void {
  program
    .command('events')
    .description('what happened in the fleet: services, replicas and nodes, numbered')
    .option('-f, --follow', 'keep printing events as they happen (Server-Sent Events) until interrupted')
    .option('--since <seq>', 'only events after this sequence number', wholeNumber(0, Number.MAX_SAFE_INTEGER))
    .option('--limit <n>', 'at most this many (without -f; hub default 100)', wholeNumber(1, 1000))
    .action(async (options: { follow?: boolean; since?: number; limit?: number }, command: Command) => {
      const client = await ctx.client(command);
      const json = ctx.flags(command).json;
      if (!options.follow) {
        const answer = await client.call<{ events: HubEvent[]; latestSeq: number }>('GET', '/v1/events', { query: { since: options.since, limit: options.limit } });
        if (json) return printJson(ctx.io, answer);
        ctx.io.stdout.write(renderTable(HEADERS, answer.events.map(row)));
        return;
      }
      const response = await client.open('/v1/events', { since: options.since }, 'text/event-stream');
      const parser = new SseParser();
      try {
        for await (const line of streamLines(response, 'the event stream', ctx.io.signal)) {
          const sse = parser.push(line);
          if (!sse) continue;
          if (sse.event === 'reset') {
            ctx.io.stderr.write(`tether: the hub no longer holds every event asked for; going on from the oldest it has (${sse.data})\n`);
            continue;
          }
          let event: HubEvent;
          try {
            event = JSON.parse(sse.data) as HubEvent;
          } catch {
            throw new CliError(`the hub sent an event that is not JSON: ${sse.data.slice(0, 120)}`);
          }
          ctx.io.stdout.write(json ? `${JSON.stringify(event)}\n` : eventLine(event));
        }
      } finally {
        response.destroy();
      }
      if (!ctx.io.signal?.aborted) throw new CliError('the hub closed the event stream');
    });
}
