import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { EventStreams } from '../events/event-streams.js';
import { ApiError, invalid } from './errors.js';
import { routeSchema } from './route-schema.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** What a client refused for too many streams is told to wait. */
const STREAMS_RETRY_AFTER_S = 10;

/** A seq from the query or Last-Event-ID: a non-negative integer; undefined or empty: none. */
function seqOf(text: string | undefined, field: string): number | null {
  if (text === undefined || text === '') return null;
  const seq = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(seq)) throw invalid('invalid_query', [{ path: field, message: `must be an event's seq (a non-negative integer), got "${text.slice(0, 40)}"` }]);
  return seq;
}

/** Strings as a URL carries them; the handler reads them and names what is wrong with one. */
export const EventsQuerySchema = Type.Object({
  since: Type.Optional(Type.String({ description: 'the events after this seq (a stream: when no Last-Event-ID is sent)' })),
  limit: Type.Optional(Type.String({ description: `JSON only: at most this many events (1 to ${MAX_LIMIT}; default ${DEFAULT_LIMIT})` })),
});

/** What the API reference says of the route (hub/http/openapi.ts). */
const DOC = {
  summary: 'What happens to services, replicas and nodes, as Server-Sent Events or as JSON',
  description: [
    'Events: service.created, service.updated, service.deleted, replica.placed, replica.started, replica.failed, replica.moved, node.joined, node.ready, node.unreachable, node.lost, node.removed; each `{ seq, time, type, service?, replica?, node?, nodeName?, message? }`.',
    'With `Accept: text/event-stream`: the events after `Last-Event-ID` (or `?since=`; neither: only new ones), then live ones, each `id: <seq>`, `event: <type>`, `data: <json>`; a `: keep-alive` comment every 15 s. A seq the hub no longer holds (or from before a restart) starts with `event: reset` (`{ oldestSeq }`) and everything held. A client too far behind is cut with `event: overflow` (`{ lastSeq, latestSeq }`) and resumes with Last-Event-ID. A stream ends after 30 minutes, for the client to reconnect with Last-Event-ID and its token to be checked again. At most 100 streams at once (429).',
    'Otherwise JSON `{ events, latestSeq, oldestSeq }`: the events after `?since=` (none: the newest), oldest first, at most `?limit=` (default 100, max 1000).',
  ].join('\n\n'),
  tags: ['hub'],
  querystring: EventsQuerySchema,
};

/**
 * `GET /v1/events` (viewer): with `Accept: text/event-stream`, Server-Sent Events: the history
 * after Last-Event-ID (or `?since=`; neither: none), then live events. Otherwise a page of the
 * history as JSON: after `?since=` (none: the newest), oldest first, at most `?limit=`.
 */
export async function eventRoutes(app: FastifyInstance, { streams }: { streams: EventStreams }): Promise<void> {
  const { events } = streams;
  app.get<{ Querystring: { since?: string; limit?: string }; Headers: { 'last-event-id'?: string } }>('/v1/events', routeSchema(DOC), async (request, reply) => {
    const since = seqOf(request.query.since, 'since');
    const wantsStream = request.method === 'GET' && (request.headers.accept ?? '').includes('text/event-stream');
    if (wantsStream) {
      // An EventSource reconnecting sends the last id it saw, and the URL it first asked for.
      const after = seqOf(request.headers['last-event-id'], 'Last-Event-ID') ?? since;
      if (streams.full) {
        void reply.header('retry-after', String(STREAMS_RETRY_AFTER_S));
        throw new ApiError(429, 'too_many_event_streams', `the hub serves at most ${streams.limits.maxClients} event streams at once; retry later, or poll without Accept: text/event-stream`);
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        // Proxies that buffer (nginx) would hold events back.
        'x-accel-buffering': 'no',
      });
      res.flushHeaders();
      streams.open(res, after);
      return reply;
    }
    let limit = DEFAULT_LIMIT;
    const asked = request.query.limit;
    if (asked !== undefined) {
      limit = /^\d{1,5}$/.test(asked) ? Number(asked) : NaN;
      if (!(limit >= 1 && limit <= MAX_LIMIT)) throw invalid('invalid_query', [{ path: 'limit', message: `must be an integer from 1 to ${MAX_LIMIT}, got "${asked.slice(0, 20)}"` }]);
    }
    const page = since === null ? events.newest(limit) : events.after(since, limit).events;
    // oldestSeq: a poller whose since is below it missed events.
    return { events: page, latestSeq: events.latestSeq, oldestSeq: events.oldestSeq };
  });
}
