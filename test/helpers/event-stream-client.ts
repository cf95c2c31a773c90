/**
 * A Server-Sent Events client for tests, over plain HTTP on loopback: it parses what the hub
 * writes into events and comments, and can stop reading (a slow client) and start again.
 */
import http from 'node:http';

export interface SseMessage {
  /** `message` when the block names no event. */
  event: string;
  id: string | null;
  data: string;
}

export interface EventStreamClient {
  status: number;
  /** The response's body as JSON when it was not a stream (a refusal). */
  body: unknown;
  messages: SseMessage[];
  comments: string[];
  /** The server ended the response (or the socket closed). */
  ended: boolean;
  /** Bytes received so far. */
  bytes: number;
  pause(): void;
  resume(): void;
  close(): void;
}

export interface OpenOptions {
  token: string;
  /** Path and query; /v1/events by default. */
  path?: string;
  lastEventId?: string;
}

/** Opens `GET /v1/events` with Accept: text/event-stream; resolves once the status and headers are in. */
export function openEventStream(baseUrl: string, opts: OpenOptions): Promise<EventStreamClient> {
  const url = new URL(opts.path ?? '/v1/events', baseUrl);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${opts.token}` };
    if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
    const req = http.get(url, { headers, agent: false }, (res) => {
      let buffer = '';
      const client: EventStreamClient = {
        status: res.statusCode ?? 0,
        body: undefined,
        messages: [],
        comments: [],
        ended: false,
        bytes: 0,
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        client.bytes += Buffer.byteLength(chunk);
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          parseBlock(block, client);
        }
      });
      const ended = () => {
        client.ended = true;
        if (client.status !== 200 && buffer) client.body = JSON.parse(buffer);
      };
      res.on('end', ended);
      res.on('close', ended);
      res.on('error', () => undefined);
      resolve(client);
    });
    req.on('error', reject);
  });
}

function parseBlock(block: string, client: EventStreamClient): void {
  let event = 'message';
  let id: string | null = null;
  const data: string[] = [];
  let fields = 0;
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) {
      client.comments.push(line.slice(1).trim());
      continue;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    fields++;
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  if (fields > 0) client.messages.push({ event, id, data: data.join('\n') });
}
