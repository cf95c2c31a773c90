import type { Command } from 'commander';
import { CliError } from '../cli-error.js';
import { Aborted, HubApiError, type HubClient } from '../client.js';
import { plainText, printJson, renderTable } from '../output.js';
import type { CommandContext } from '../command-context.js';
import { wholeNumber } from '../option-values.js';
import { SseParser } from '../sse.js';
import { writePaced } from '../paced-write.js';
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
  // A replica's error is a device's words: printed as plain text, like a table cell.
  return `${plainText(`${e.time}  ${e.type}${subject ? `  ${subject}` : ''}${e.message ? `  ${e.message}` : ''}`)}\n`;
}

/** Reconnections in a row that fail before `events -f` gives up; each waits twice the one before. */
const MAX_RECONNECTS = 5;
const FIRST_RECONNECT_DELAY_MS = 1000;
/**
 * A stream the hub ends after at least this long is one it renews (it ends each after a while, to
 * check the token again): resumed at once, quietly. One that ends sooner counts as a failure, so
 * that a hub that ends every stream at once is not asked again in a tight loop.
 */
const RENEWED_AFTER_MS = 1000;

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Server-Sent Events until interrupted. The stream resumes where it broke off (Last-Event-ID):
 * at once when the hub cut it for reading too slowly (`overflow`), after a pause when it ended or
 * broke; after MAX_RECONNECTS failures in a row, the command fails.
 */
async function followEvents(client: HubClient, ctx: CommandContext, since: number | undefined, json: boolean): Promise<void> {
  const { io } = ctx;
  let lastSeq: number | null = null;
  let failures = 0;
  for (;;) {
    let why = 'the hub closed the event stream';
    const openedAtMs = ctx.nowMs();
    try {
      const response = await client.open('/v1/events', lastSeq === null ? { since } : {}, 'text/event-stream', lastSeq === null ? {} : { 'last-event-id': String(lastSeq) });
      const parser = new SseParser();
      try {
        for await (const line of streamLines(response, 'the event stream', io.signal)) {
          const sse = parser.push(line);
          if (!sse) continue;
          if (sse.event === 'reset') {
            io.stderr.write(`tether: the hub no longer holds every event asked for; going on from the oldest it has (${sse.data})\n`);
            continue;
          }
          if (sse.event === 'overflow') {
            why = 'overflow';
            break;
          }
          let event: HubEvent;
          try {
            event = JSON.parse(sse.data) as HubEvent;
          } catch {
            throw new CliError(`the hub sent an event that is not JSON: ${sse.data.slice(0, 120)}`);
          }
          failures = 0;
          if (typeof event.seq === 'number') lastSeq = event.seq;
          await writePaced(io.stdout, json ? `${JSON.stringify(event)}\n` : eventLine(event), io.signal);
        }
      } finally {
        response.destroy();
      }
    } catch (error) {
      // A refusal (401, 429, a bad query) is final; a broken connection is retried.
      if (error instanceof Aborted || error instanceof HubApiError || !(error instanceof CliError)) throw error;
      why = error.message;
    }
    if (io.signal?.aborted) return;
    if (why === 'overflow') continue;
    if (why === 'the hub closed the event stream' && ctx.nowMs() - openedAtMs >= RENEWED_AFTER_MS) {
      failures = 0;
      continue;
    }
    failures++;
    if (failures > MAX_RECONNECTS) throw new CliError(`${why}; gave up after ${MAX_RECONNECTS} reconnections`);
    io.stderr.write(`tether: ${why}; reconnecting\n`);
    await sleep(FIRST_RECONNECT_DELAY_MS * 2 ** (failures - 1), io.signal);
    if (io.signal?.aborted) return;
  }
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
      await followEvents(client, ctx, options.since, json === true);
    });
}
