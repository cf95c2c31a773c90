/**
 * `GET /v1/services/:name/logs`: the containers' output of a service's replicas, streamed from
 * the agents that run them as NDJSON, one object per line, interleaved by replica:
 * `{ replica, node, stream, time?, line }`, and `{ replica, node, error }` for a replica that
 * cannot be read. Nothing is stored on the hub (see hub/logs/log-relay.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import Type from 'typebox';
import { LOG_LIMITS, LOGS_PROTOCOL_VERSION } from '../../shared/protocol.js';
import type { LogRelay } from '../logs/log-relay.js';
import { counterFrom, gaugeFrom } from '../metrics.js';
import type { ServiceRecord } from '../store/store.js';
import { ApiError, invalid } from './errors.js';
import { routeSchema } from './route-schema.js';

export const DEFAULT_LOG_TAIL = 100;
/**
 * Lines for replicas that cannot be read, at most; the rest are counted in one line. They are
 * written at once, whether the client reads or not: a large service mostly pending or on nodes
 * away would otherwise cost the hub megabytes per request.
 */
export const MAX_UNREADABLE_LINES = 100;

/** Strings here; their values are checked below, with messages that say what each takes. */
const LogsQuerySchema = Type.Object({
  follow: Type.Optional(Type.String({ maxLength: 8, description: '1: go on with new lines as they come, until the client goes away' })),
  tail: Type.Optional(Type.String({ maxLength: 8, description: `Last lines of each replica first: 0 to ${LOG_LIMITS.maxTailLines}, default ${DEFAULT_LOG_TAIL}` })),
  replica: Type.Optional(Type.String({ maxLength: 128, description: 'One replica only (its id)' })),
  timestamps: Type.Optional(Type.String({ maxLength: 8, description: "1: each line carries the engine's time" })),
  since: Type.Optional(Type.String({ maxLength: 40, description: 'Only lines from then on: epoch seconds or an RFC 3339 time' })),
});

const LOGS_DOC = routeSchema({
  summary: "Stream a service's container logs",
  description:
    'NDJSON, one object per line, interleaved by replica: `{ replica, node, stream, time?, line }`, and `{ replica, node, error }` for a replica that cannot be read ' +
    `(at most ${MAX_UNREADABLE_LINES}; then one line with replica null counts the rest). ` +
    "Streamed from the agents that run the replicas, never stored on the hub. Without follow the answer ends once every replica's tail was sent. " +
    `429 past ${LOG_LIMITS.maxStreamsPerNode} streams on one node or 256 on the hub.`,
  tags: ['services'],
  params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) }),
  querystring: LogsQuerySchema,
});

type LogsQuery = { follow?: string; tail?: string; replica?: string; timestamps?: string; since?: string };

function flag(query: LogsQuery, field: 'follow' | 'timestamps'): boolean {
  const text = query[field];
  if (text === undefined || text === '0' || text === 'false') return false;
  if (text === '' || text === '1' || text === 'true') return true;
  throw invalid('invalid_query', [{ path: field, message: `must be 1 or 0 (true or false), got "${text.slice(0, 40)}"` }]);
}

function tailOf(query: LogsQuery): number {
  const text = query.tail;
  if (text === undefined) return DEFAULT_LOG_TAIL;
  const n = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n <= LOG_LIMITS.maxTailLines)) {
    throw invalid('invalid_query', [{ path: 'tail', message: `must be a whole number from 0 to ${LOG_LIMITS.maxTailLines}, got "${text.slice(0, 40)}"` }]);
  }
  return n;
}

/** Epoch seconds, or an RFC 3339 time. */
function sinceOf(query: LogsQuery): number | undefined {
  const text = query.since;
  if (text === undefined) return undefined;
  const ms = /^\d{1,12}$/.test(text) ? Number(text) * 1000 : /^\d{4}-\d\d-\d\dT/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) {
    throw invalid('invalid_query', [{ path: 'since', message: `must be epoch seconds or an RFC 3339 time, got "${text.slice(0, 40)}"` }]);
  }
  return Math.floor(ms / 1000);
}

export interface LogRouteDeps {
  relay: LogRelay;
  services: { get(name: string): ServiceRecord | undefined };
  /** The protocol each node's agent said hello with; null: not connected. */
  agents: { protocolVersion(nodeId: string): number | null };
  /** Where the relay's figures are published (the hub's /metrics); absent: nowhere. */
  metrics?: Registry;
}

export async function logRoutes(app: FastifyInstance, { relay, services, agents, metrics }: LogRouteDeps): Promise<void> {
  if (metrics) publishLogMetrics(metrics, relay);

  app.get<{ Params: { name: string }; Querystring: LogsQuery }>('/v1/services/:name/logs', LOGS_DOC, async (request, reply) => {
    const { name } = request.params;
    const query = request.query;
    const follow = flag(query, 'follow');
    const timestamps = flag(query, 'timestamps');
    const tail = tailOf(query);
    const since = sinceOf(query);
    const record = services.get(name);
    if (!record) throw new ApiError(404, 'service_not_found', `no service named "${name}"`);
    let placements = record.placements;
    if (query.replica !== undefined) {
      placements = placements.filter((p) => p.replicaId === query.replica);
      if (placements.length === 0) throw new ApiError(404, 'replica_not_found', `service "${name}" has no replica "${query.replica.slice(0, 128)}"`);
    }
    const targets: Array<{ replicaId: string; nodeId: string }> = [];
    const errors: Array<{ replicaId: string | null; nodeId: string | null; error: string }> = [];
    let unreadable = 0;
    const cannotRead = (replicaId: string, nodeId: string | null, error: string) => {
      if (unreadable++ < MAX_UNREADABLE_LINES) errors.push({ replicaId, nodeId, error });
    };
    for (const p of placements) {
      if (p.nodeId === null) {
        cannotRead(p.replicaId, null, `not placed on any node: ${p.pendingReason ?? 'pending'}`);
        continue;
      }
      const version = agents.protocolVersion(p.nodeId);
      if (version === null) cannotRead(p.replicaId, p.nodeId, `node ${p.nodeId} is not connected`);
      else if (version < LOGS_PROTOCOL_VERSION) cannotRead(p.replicaId, p.nodeId, `agent too old for logs (protocol < ${LOGS_PROTOCOL_VERSION})`);
      else targets.push({ replicaId: p.replicaId, nodeId: p.nodeId });
    }
    if (unreadable > MAX_UNREADABLE_LINES) {
      const more = unreadable - MAX_UNREADABLE_LINES;
      errors.push({ replicaId: null, nodeId: null, error: `${more} more replicas cannot be read (not placed, or on nodes not connected): ask for one with ?replica=` });
    }

    const headers = { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    // A HEAD has no body to read lines into: asking agents for logs would stream them into the void.
    if (request.method === 'HEAD') return reply.headers(headers).send();
    const refused = relay.refusal(targets);
    if (refused !== null) {
      relay.countRefused();
      throw new ApiError(429, 'too_many_log_streams', refused);
    }
    // From here the answer is ours to write, line by line, as the agents send them.
    reply.hijack();
    const raw = reply.raw;
    // Gone while its request was checked: its 'close' has been and gone, and nothing would ever
    // close the streams opened for it (each holds one of its node's few until the node reconnects).
    if (raw.destroyed || request.raw.socket.destroyed) return;
    raw.writeHead(200, headers);
    // A followed service that prints nothing yet still answers at once.
    raw.flushHeaders();
    const output = {
      write: (text: string) => raw.write(text),
      end: () => raw.end(),
      get bufferedBytes() {
        return raw.writableLength;
      },
    };
    const opened = relay.open({ targets, errors, tail, follow, timestamps, ...(since === undefined ? {} : { since }), output });
    if (!opened.ok) {
      // Not after refusal() said yes in the same turn; should it happen, the client hears why.
      raw.end(`${JSON.stringify({ error: opened.message })}\n`);
      return;
    }
    const streams = opened.request;
    raw.on('error', () => undefined); // a client reset: 'close' follows and ends the streams
    raw.on('drain', () => streams.drained());
    raw.once('close', () => {
      streams.close();
      relay.forget(streams);
    });
  });
}

function publishLogMetrics(registry: Registry, relay: LogRelay): void {
  const gauge = (name: string, help: string, read: () => number) => gaugeFrom(registry, name, help, read);
  const counter = (name: string, help: string, read: () => number) => counterFrom(registry, name, help, read);
  gauge('tether_log_streams', 'Log streams open from agents to HTTP clients', () => relay.stats().streams);
  gauge('tether_log_chunks_in_flight', `Log chunks granted to agents and not received yet (at most ${LOG_LIMITS.creditChunks} per stream)`, () => relay.stats().chunksInFlight);
  gauge('tether_log_buffered_bytes', 'Bytes of logs written to responses and not yet taken by their clients', () => relay.stats().bufferedBytes);
  gauge('tether_log_blocked_requests', 'Log requests whose client is behind: their agents wait', () => relay.stats().blockedRequests);
  counter('tether_log_chunks_total', 'Log chunks relayed from agents to clients', () => relay.stats().chunksRelayed);
  counter('tether_log_credit_violations_total', 'Log chunks an agent sent past its credit (the stream was ended)', () => relay.stats().creditViolations);
  counter('tether_log_requests_refused_total', 'Log requests refused for the stream limits (429)', () => relay.stats().refusedRequests);
}
