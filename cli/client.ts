import http from 'node:http';
import https from 'node:https';
import { CERTIFICATE_ERROR_CODES } from '../shared/presented-chain.js';
import { CliError } from './cli-error.js';
import type { Connection } from './config.js';
import { pinCa } from './pinned-ca.js';

/**
 * Node's http/https modules, not fetch: fetch takes no CA of its own without the undici package,
 * and the hub's CA is usually one only this hub uses.
 */

/** The largest answer read whole: a page of 1000 nodes or a service with 10,000 replicas is a few MB. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** A request (not a followed stream) whose hub says nothing for this long has failed. */
const IDLE_TIMEOUT_MS = 30_000;

/** OpenSSL's verdicts on a chain the client does not trust, and a name the certificate does not list (`--ca-cert` checks it). */
const CERTIFICATE_ERRORS: ReadonlySet<string> = new Set([...CERTIFICATE_ERROR_CODES, 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** The hub refused a request: its status, its error code and its words. */
export class HubApiError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    /** From a 412 `revision_mismatch`: the revision the service has now. */
    readonly currentRevision: number | null = null,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  query?: Query;
  body?: unknown;
  /**
   * The write applies only to this revision: a number is sent as `If-Match: "<revision>"`, a
   * string (an ETag the hub sent) as it came.
   */
  ifMatch?: number | string;
  /** `*`: create only; the write is refused (412) if the thing exists by then. */
  ifNoneMatch?: '*';
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; details?: Array<{ path?: unknown; message?: unknown }> };
  currentRevision?: unknown;
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ').trim();

/**
 * One line for a refusal: the hub's message, the fields it names that the message does not
 * already, then status and code, e.g. `image: is required [400 invalid_spec]`.
 */
export function refusalLine(status: number, body: unknown, origin: string): { line: string; code: string; currentRevision: number | null } {
  const parsed = (body ?? {}) as ErrorBody;
  const error = parsed.error ?? {};
  const code = typeof error.code === 'string' ? error.code : `http_${status}`;
  let message = typeof error.message === 'string' ? oneLine(error.message) : `the hub answered HTTP ${status}`;
  const fields = (Array.isArray(error.details) ? error.details : [])
    .filter((d) => typeof d.path === 'string' && d.path !== '' && !message.includes(`${d.path}:`))
    .slice(0, 3)
    .map((d) => `${String(d.path)}: ${oneLine(String(d.message ?? ''))}`);
  if (fields.length > 0) message = `${message} (${fields.join('; ')})`;
  const currentRevision = typeof parsed.currentRevision === 'number' ? parsed.currentRevision : null;
  if (currentRevision !== null && !message.includes(`revision ${currentRevision}`)) message = `${message} (the current revision is ${currentRevision})`;
  if (status === 401) message = `the hub at ${origin} refused the token (${message}): check --token or TETHER_TOKEN, or run tether login`;
  return { line: `${message} [${status} ${code}]`, code, currentRevision };
}

/** A request that never got an answer, in words that say what to do. */
export function transportFailure(error: unknown, hub: URL): CliError {
  const err = error as NodeJS.ErrnoException;
  const code = err.code ?? '';
  if (CERTIFICATE_ERRORS.has(code)) {
    return new CliError(
      `the hub at ${hub.origin} presents a certificate this CLI does not trust (${code}): give --ca-fingerprint sha256:... (printed with the hub's join command) or --ca-cert FILE; tether login saves either`,
    );
  }
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message)) {
    return new CliError(`cannot reach the hub at ${hub.origin}: it does not speak HTTPS there (${err.message}); try http://`);
  }
  const hint = hub.protocol === 'http:' && (code === 'ECONNRESET' || /socket hang up/.test(err.message)) ? ' (does it serve HTTPS? try https://)' : '';
  return new CliError(`cannot reach the hub at ${hub.origin}: ${err.message || code}${hint}`);
}

export class HubClient {
  private constructor(
    readonly hub: URL,
    private readonly token: string,
    private readonly tlsOptions: https.RequestOptions,
    private readonly signal: AbortSignal | undefined,
    private readonly idleTimeoutMs: number,
  ) {}

  /** A client for the connection; a CA given by fingerprint is fetched and pinned first. */
  static async connect(connection: Connection, signal?: AbortSignal, idleTimeoutMs = IDLE_TIMEOUT_MS): Promise<HubClient> {
    const { hub, token, trust } = connection;
    let tlsOptions: https.RequestOptions = {};
    if (trust.kind === 'fingerprint') {
      tlsOptions = { ca: await pinCa(hub, trust.fingerprint), checkServerIdentity: () => undefined };
    } else if (trust.kind === 'ca') {
      tlsOptions = { ca: trust.pem, ...(trust.checkName ? {} : { checkServerIdentity: () => undefined }) };
    }
    return new HubClient(hub, token, tlsOptions, signal, idleTimeoutMs);
  }

  /** A JSON call; any answer but 2xx is a HubApiError. */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
    const { status, body } = await this.exchange(method, path, options);
    if (status >= 400) throw this.refused(status, body);
    return body as T;
  }

  /** GET that answers null for a 404 (the thing is not there), and throws for other refusals. */
  async find<T>(path: string, query?: Query): Promise<T | null> {
    return (await this.findTagged<T>(path, query))?.body ?? null;
  }

  /** find, with the ETag the hub sent (the revision to send back in If-Match), null without one. */
  async findTagged<T>(path: string, query?: Query): Promise<{ body: T; etag: string | null } | null> {
    const { status, body, etag } = await this.exchange('GET', path, query ? { query } : {});
    if (status === 404) return null;
    if (status >= 400) throw this.refused(status, body);
    return { body: body as T, etag };
  }

  /**
   * A streamed answer (NDJSON, SSE), unread: the caller reads it and must consume or destroy it.
   * A refusal is read and thrown here. The idle timeout holds until the answer starts (a hub that
   * takes the connection and never answers would hang a script for good), and no longer: a
   * followed stream may be quiet for hours.
   */
  async open(path: string, query: Query, accept: string, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
    const response = await this.send('GET', this.url(path, query), { accept, ...headers }, undefined);
    response.socket?.setTimeout(0);
    if (response.statusCode === undefined || response.statusCode >= 400) {
      const status = response.statusCode ?? 0;
      throw this.refused(status, parseJson(await readBody(response, this.hub)));
    }
    return response;
  }

  private refused(status: number, body: unknown): HubApiError {
    const { line, code, currentRevision } = refusalLine(status, body, this.hub.origin);
    return new HubApiError(line, status, code, currentRevision);
  }

  private async exchange(method: string, path: string, options: CallOptions): Promise<{ status: number; body: unknown; etag: string | null }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    if (options.ifMatch !== undefined) headers['if-match'] = typeof options.ifMatch === 'number' ? `"${options.ifMatch}"` : options.ifMatch;
    if (options.ifNoneMatch !== undefined) headers['if-none-match'] = options.ifNoneMatch;
    const response = await this.send(method, this.url(path, options.query ?? {}), headers, payload);
    const text = await readBody(response, this.hub);
    const etag = response.headers.etag;
    return { status: response.statusCode ?? 0, body: parseJson(text), etag: typeof etag === 'string' ? etag : null };
  }

  private url(path: string, query: Query): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const search = params.toString();
    return search ? `${path}?${search}` : path;
  }

  private send(method: string, pathAndQuery: string, headers: Record<string, string>, payload: string | undefined): Promise<http.IncomingMessage> {
    const secure = this.hub.protocol === 'https:';
    const options: https.RequestOptions = {
      method,
      hostname: this.hub.hostname.replace(/^\[|\]$/g, ''),
      port: this.hub.port || (secure ? 443 : 80),
      path: pathAndQuery,
      headers: { ...headers, authorization: `Bearer ${this.token}`, ...(payload !== undefined ? { 'content-length': String(Buffer.byteLength(payload)) } : {}) },
      ...(secure ? this.tlsOptions : {}),
      ...(this.signal ? { signal: this.signal } : {}),
    };
    return new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(options, resolve);
      request.on('error', (error) => reject(this.signal?.aborted ? new Aborted() : transportFailure(error, this.hub)));
      request.setTimeout(this.idleTimeoutMs, () => request.destroy(new Error(`no answer within ${this.idleTimeoutMs / 1000} s`)));
      request.end(payload);
    });
  }
}

/** The user ended a followed stream (Ctrl-C): not a failure. */
export class Aborted extends Error {
  constructor() {
    super('aborted');
  }
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { message: `the hub answered something that is not JSON: ${oneLine(text).slice(0, 120)}` } };
  }
}

function readBody(response: http.IncomingMessage, hub: URL): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    response.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_BODY_BYTES) {
        response.destroy();
        reject(new CliError(`the hub at ${hub.origin} answered more than ${MAX_BODY_BYTES / 1024 / 1024} MiB; refusing to read it all`));
        return;
      }
      chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', (error) => reject(transportFailure(error, hub)));
  });
}
