import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { pinnedTlsOptions } from './tls/pinned-ca.js';

/** What the agent keeps after joining: who it is and how it proves it (file mode 0600). */
export interface NodeIdentity {
  hubUrl: string;
  nodeId: string;
  credential: string;
  /** The name the node joined with (absent in files from before it was kept). */
  name?: string;
  /**
   * The credential the node connected with before the hub sent `credential` (a rotation), kept
   * until the hub welcomes one of the two: a hub that died before storing the new one still holds
   * this one. Absent otherwise.
   */
  previousCredential?: string;
  /**
   * The hub said this node was removed (a nodeRemoved close, or a 401 saying so): the agent never
   * connects with this identity again, even after a restart or once a hub restarted has forgotten
   * the removal. Remove the file and join again to come back as a new node.
   */
  removed?: { at: string; reason: string };
}

const FILE = 'node.json';
const JOIN_TIMEOUT_MS = 15_000;
/** The hub answers a join with a small JSON object: anything longer is not an answer to read. */
const JOIN_RESPONSE_MAX_BYTES = 64 * 1024;

export async function loadIdentity(dataDir: string): Promise<NodeIdentity | null> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const value = JSON.parse(text) as Partial<NodeIdentity>;
  if (typeof value.hubUrl !== 'string' || typeof value.nodeId !== 'string' || typeof value.credential !== 'string') {
    throw new Error(`${path.join(dataDir, FILE)} is damaged: remove it and join again with a new join token`);
  }
  return value as NodeIdentity;
}

export async function saveIdentity(dataDir: string, identity: NodeIdentity): Promise<void> {
  await writeFileAtomic(path.join(dataDir, FILE), `${JSON.stringify(identity, null, 2)}\n`, 0o600);
}

/**
 * Keeps the agent's identity file in step with its credentials, one write at a time and in order
 * (a rotation's write must never be overtaken by an older one): each write is atomic, so a crash
 * leaves the file as it was before or after it.
 */
export class IdentityFile {
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly dataDir: string,
    private identity: NodeIdentity,
  ) {}

  /** A rotation's credential, with the one connected with kept beside it (see NodeIdentity.previousCredential). */
  rotated(credential: string, connectedWith: string): Promise<void> {
    return this.write({ ...this.identity, credential, previousCredential: connectedWith });
  }

  /** The hub welcomed `credential`: it is the node's, and the other is dropped. */
  confirmed(credential: string): Promise<void> {
    const { previousCredential: _dropped, ...rest } = this.identity;
    return this.write({ ...rest, credential });
  }

  /** The hub removed the node: kept, so that no later start of the agent tries again. */
  removed(reason: string): Promise<void> {
    return this.write({ ...this.identity, removed: { at: new Date().toISOString(), reason } });
  }

  private write(next: NodeIdentity): Promise<void> {
    const written = this.writes.then(() => saveIdentity(this.dataDir, next));
    this.writes = written.then(
      () => {
        this.identity = next;
      },
      () => undefined,
    );
    return written;
  }
}

export class JoinRefusedError extends Error {
  readonly code = 'join_refused';
  constructor(
    message: string,
    /** The hub's error code, when it gave one (`node_name_taken`, `invalid_join_token`, ...). */
    readonly hubCode: string | null = null,
  ) {
    super(message);
  }
}

/**
 * The hub refuses this address for a while (429: too many failed authentications from it, other
 * devices behind the same NAT perhaps): a wait, then another try, never a reason to give up.
 */
export class JoinThrottledError extends Error {
  readonly code = 'join_throttled';
  constructor(readonly retryAfterMs: number) {
    super(`the hub refuses joins from this address for now (HTTP 429); trying again in ${Math.round(retryAfterMs / 1000)} s`);
  }
}

/** Without a Retry-After, a 429 is waited out this long. */
const DEFAULT_THROTTLE_WAIT_MS = 60_000;
/** A longer Retry-After is not believed: a device must not be parked for days by one answer. */
const MAX_THROTTLE_WAIT_MS = 10 * 60_000;

/**
 * Trades a join token for this node's id and credential; over https, with the chain checked
 * against the pinned CA `caPem` (see agent/tls/pinned-ca.ts). A refusal (bad or expired token) is
 * final and thrown as JoinRefusedError; a hub that cannot be reached is a plain Error to retry.
 */
export async function joinHub(hubUrl: string, joinToken: string, name: string, labels: Record<string, string>, caPem: string | null = null): Promise<NodeIdentity> {
  const response = await postJson(new URL('/v1/join', hubUrl), JSON.stringify({ joinToken, name, labels }), caPem);
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(response.body);
  } catch {
    // no JSON: judged by the status alone
  }
  const body = (parsed !== null && typeof parsed === 'object' ? parsed : {}) as { nodeId?: string; credential?: string; error?: { code?: string; message?: string } };
  // The agent's WebSocket to the same URL would get the redirect too, and does not follow it.
  if (response.status >= 300 && response.status < 400) {
    throw new JoinRefusedError(`${hubUrl} redirects (HTTP ${response.status}) to ${response.location ?? 'nowhere'}: pass the hub's final address as --hub`);
  }
  if (response.status === 429) {
    const seconds = Number(response.retryAfter);
    throw new JoinThrottledError(Number.isInteger(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_THROTTLE_WAIT_MS) : DEFAULT_THROTTLE_WAIT_MS);
  }
  if (response.status >= 400 && response.status < 500) {
    const hubCode = typeof body.error?.code === 'string' ? body.error.code : null;
    throw new JoinRefusedError(`the hub refused to join this node (HTTP ${response.status}): ${body.error?.message ?? 'no reason given'}`, hubCode);
  }
  if (response.status < 200 || response.status >= 300 || !body.nodeId || !body.credential) throw new Error(`join failed: HTTP ${response.status}`);
  return { hubUrl, nodeId: body.nodeId, credential: body.credential, name };
}

/**
 * One POST with node:http(s), which `ws` has loaded already. Not fetch: its first call loads undici,
 * which stays in a freshly joined agent's memory for good (about 1.5 MiB of live heap, several MiB of RSS).
 */
function postJson(url: URL, payload: string, caPem: string | null): Promise<{ status: number; location: string | undefined; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        signal: AbortSignal.timeout(JOIN_TIMEOUT_MS),
        ...(caPem !== null ? pinnedTlsOptions(caPem) : {}),
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
          if (body.length > JOIN_RESPONSE_MAX_BYTES) request.destroy(new Error(`join failed: the hub's answer is over ${JOIN_RESPONSE_MAX_BYTES} bytes`));
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, location: response.headers.location, retryAfter: response.headers['retry-after'], body }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}
