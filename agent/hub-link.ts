import WebSocket from 'ws';
import { decodeHubFrame, encodeFrame } from '../shared/codec.js';
import { AGENT_PATH, AGENT_RECONNECT_CAP_MS, CloseCode, NODE_REMOVED_ERROR_CODE, PROTOCOL_LIMITS, type AgentFrame, type CredentialFrame, type HelloFrame, type HubLogsFrame, type TargetFrame } from '../shared/protocol.js';
import type { Logger } from '../shared/logger.js';
import { ReconnectSchedule, type AttemptOutcome } from './reconnect-schedule.js';
import { isCertificateError, PinMismatchError, pinnedTlsOptions, presentedCaFingerprint, type PinnedCa } from './tls/pinned-ca.js';

export interface HubLinkOptions {
  /** The hub's base URL, http(s)://host:port. */
  hubUrl: string;
  /** The hub's CA pinned at join: every wss:// connection must chain to it (see agent/tls/pinned-ca.ts). */
  pinnedCa?: PinnedCa | null;
  credential: string;
  /**
   * The credential the agent connected with before a rotation the hub may not have stored (a hub
   * that died between our answer and its write): tried after a 401 of `credential`.
   */
  fallbackCredential?: string | null;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Built afresh for every connection, so it carries the agent's current picture. */
  hello: () => HelloFrame;
  /** The hello is on the wire: send() works from here on, for what the hello does not carry. */
  onHelloSent?: () => void;
  onTarget: (target: TargetFrame) => void;
  /** A log stream's frame from the hub (protocol 8); absent: log streams are refused. */
  onLogs?: (frame: HubLogsFrame) => void;
  /**
   * A new credential (protocol 7): resolves once it is on disk, and the link then answers
   * `credentialSaved` and connects again with it; rejects when it could not be kept (no answer:
   * the hub keeps the old digest).
   */
  onCredential?: (frame: CredentialFrame, current: string) => Promise<void>;
  /** Welcomed with `credential`: the other one, if any, is no longer needed. */
  onWelcomed?: (credential: string) => void;
  /** The hub removed this node: the link has stopped for good. */
  onRemoved?: (reason: string) => void;
  onConnectionChange?: (connected: boolean) => void;
  /** Reconnect delays: full jitter from about baseMs, capped at capMs. */
  reconnectBaseMs?: number;
  reconnectCapMs?: number;
  /** After a working link is lost, a refusing hub is tried again about this often for a while (see ReconnectSchedule). */
  fastReconnectIntervalMs?: number;
  /** Missed heartbeat intervals without any sign of the hub before the link is judged dead, plus one (an idle hub is pinged every other interval; see startHeartbeat). */
  staleAfterIntervals?: number;
}

/**
 * The agent's persistent connection to the hub. Reconnects forever with jittered backoff; detects
 * a dead link by unanswered pings, since a hub behind a broken network may never send a close.
 */
export class HubLink {
  private ws: WebSocket | null = null;
  /** The socket the hello went out on: frames after it reach the hub, welcomed or not yet. */
  private helloSentOn: WebSocket | null = null;
  private ready = false;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastHubActivityMs = 0;
  private readonly schedule: ReconnectSchedule;
  /** The last close reason logged, so a hub refusing us every few seconds is logged once. */
  private lastProblem = '';
  /** The connection closed by renewHello(): its close is no loss, and the next one opens at once. */
  private renewing: WebSocket | null = null;
  /** How the last attempt ended (null: a link lost, or closed to say hello again): the next delay depends on it. */
  private lastOutcome: AttemptOutcome | null = null;
  /** Closed to say hello again: the next connection opens at once. */
  private reconnectNow = false;
  connects = 0;
  /** The credential the next attempt uses, and the other one to try after a 401 (see fallbackCredential). */
  private credential: string;
  private fallback: string | null;
  /** The credential of the current attempt. */
  private attemptCredential = '';
  /** The connection that carried a credential frame: it takes one, then the link connects again with it. */
  private credentialTakenOn: WebSocket | null = null;
  /** The hub removed this node: no attempt is made again. */
  private removed = false;

  constructor(private readonly opts: HubLinkOptions) {
    this.credential = opts.credential;
    this.fallback = opts.fallbackCredential ?? null;
    this.schedule = new ReconnectSchedule({
      baseMs: opts.reconnectBaseMs ?? 500,
      capMs: opts.reconnectCapMs ?? AGENT_RECONNECT_CAP_MS,
      ...(opts.fastReconnectIntervalMs === undefined ? {} : { fastIntervalMs: opts.fastReconnectIntervalMs }),
    });
  }

  get connected(): boolean {
    return this.ready;
  }

  /** Whether the hub removed this node (a nodeRemoved close, or a 401 saying so): final. */
  get nodeRemoved(): boolean {
    return this.removed;
  }

  start(): void {
    if (this.removed) return;
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(CloseCode.goingAway, 'agent stopping');
    });
  }

  /**
   * Sends a frame once the hello is on the wire; frames before it, or with no connection, are
   * dropped: the next hello carries the whole picture. Not only after the welcome: the hub handles
   * the hello as it comes and the frames after it in order, and a change made while a busy hub has
   * yet to welcome us would otherwise never reach it (the loop sends each change once).
   */
  send(frame: AgentFrame): boolean {
    const ws = this.ws;
    if (!ws || ws !== this.helloSentOn || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encodeFrame(frame));
    return true;
  }

  /** Whether a hello went out on the current connection (welcomed or not yet). */
  get helloOnWire(): boolean {
    return this.ws !== null && this.ws === this.helloSentOn;
  }

  /**
   * Says hello again, on a new connection (the hub takes a hello only first): a clean close, then
   * a reconnect at once. False when no hello is on the wire: the next one carries the picture.
   */
  renewHello(): boolean {
    const ws = this.ws;
    if (this.stopped || !ws || ws !== this.helloSentOn || ws.readyState !== WebSocket.OPEN) return false;
    this.renewing = ws;
    this.opts.logger.info({}, 'saying hello to the hub again: the node facts changed');
    ws.close(1000, 'saying hello again');
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    const url = new URL(AGENT_PATH, this.opts.hubUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.attemptCredential = this.credential;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.attemptCredential}` },
      maxPayload: PROTOCOL_LIMITS.maxHubFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: 15_000,
      ...(this.opts.pinnedCa ? pinnedTlsOptions(this.opts.pinnedCa.pem) : {}),
    });
    this.ws = ws;
    let refused = false;
    // Anything that ends this attempt without a word on why is a failure; refusals say otherwise below.
    this.lastOutcome = { kind: 'failed' };

    ws.on('open', () => {
      this.lastHubActivityMs = performance.now();
      ws.send(encodeFrame(this.opts.hello()));
      this.helloSentOn = ws;
      this.opts.onHelloSent?.();
    });
    ws.on('message', (data: WebSocket.RawData) => {
      this.lastHubActivityMs = performance.now();
      const decoded = decodeHubFrame(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
      if (!decoded.ok) {
        this.opts.logger.error({ reason: decoded.reason }, 'bad frame from the hub; reconnecting');
        ws.close(CloseCode.badFrame, decoded.reason.slice(0, 120));
        return;
      }
      const frame = decoded.frame;
      if (frame.type === 'welcome') {
        this.ready = true;
        this.connects++;
        this.schedule.connected();
        if (this.lastProblem) this.opts.logger.info({ nodeId: frame.nodeId }, 'connected to the hub again');
        else this.opts.logger.info({ nodeId: frame.nodeId }, 'connected to the hub');
        this.lastProblem = '';
        this.startHeartbeat(frame.heartbeatIntervalMs);
        if (this.fallback !== null) {
          this.fallback = null;
          this.opts.onWelcomed?.(this.attemptCredential);
        }
        this.opts.onConnectionChange?.(true);
      } else if (!this.ready) {
        return;
      } else if (frame.type === 'credential') {
        this.takeCredential(ws, frame);
      } else if (frame.type === 'logs.open' || frame.type === 'logs.credit' || frame.type === 'logs.close') {
        if (this.opts.onLogs) this.opts.onLogs(frame);
        else if (frame.type === 'logs.open') ws.send(encodeFrame({ type: 'logs.error', stream: frame.stream, message: 'this agent reads no container logs' }));
      } else {
        this.opts.onTarget(frame);
      }
    });
    ws.on('pong', () => {
      this.lastHubActivityMs = performance.now();
    });
    ws.on('unexpected-response', (_req, res) => {
      refused = true;
      if (res.statusCode === 401) {
        // The hub says why in a small JSON body; a removal is final, anything else may mend.
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        // Ended only once the body is read: terminating first would drop it.
        let done = false;
        const end = (text: string) => {
          if (done) return;
          done = true;
          this.unauthorized(text);
          ws.terminate();
        };
        res.on('end', () => end(body));
        res.on('error', () => end(''));
        return;
      }
      const problem = `hub refused the connection: HTTP ${res.statusCode}`;
      this.report(problem);
      // A busy hub (503), or one that refuses this address for a while after failed
      // authentications (429), says when to come back: that is a wait, not a failure, so the
      // backoff stays where it was. Jitter spreads the agents it turned away over the window.
      const retryAfterS = res.statusCode === 503 || res.statusCode === 429 ? Number(res.headers['retry-after']) : Number.NaN;
      if (Number.isInteger(retryAfterS) && retryAfterS > 0) this.lastOutcome = { kind: 'retryAfter', seconds: retryAfterS };
      res.resume();
      ws.terminate();
    });
    ws.on('error', (error: Error) => {
      // After a refused upgrade the abort also surfaces as an error; the refusal was reported.
      if (!refused && this.opts.pinnedCa && isCertificateError(error)) this.reportPinMismatch(url, this.opts.pinnedCa.fingerprint);
      else if (!refused) this.report(`cannot reach the hub: ${error.message}`);
      // Nothing listens (a hub restarting, say): trying again soon costs it nothing.
      if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') this.lastOutcome = { kind: 'refused' };
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.ws === ws) this.ws = null;
      if (this.helloSentOn === ws) this.helloSentOn = null;
      const wasReady = this.ready;
      const renewed = this.renewing === ws;
      if (renewed) this.renewing = null;
      this.ready = false;
      this.stopHeartbeat();
      if (wasReady) this.opts.onConnectionChange?.(false);
      if (wasReady) {
        // A link that worked is lost: most likely the hub restarts (see ReconnectSchedule).
        this.schedule.lost();
        this.lastOutcome = null;
      }
      if (code === CloseCode.nodeRemoved) {
        return this.removedByHub(reason.toString() || 'node removed');
      }
      if ((renewed && code === 1000) || (this.credentialTakenOn === ws && code === 1000)) {
        // Closed to say hello again, or to connect with a new credential: back at once.
        this.reconnectNow = true;
      } else if (
        // Refusals a retry may not mend are reported as such; any other code (heartbeatTimeout too) is a lost link.
        code === CloseCode.versionMismatch || code === CloseCode.unauthorized || code === CloseCode.badFrame
      ) {
        this.report(`hub closed the connection (${code}): ${reason.toString() || 'no reason'}`);
      } else if (wasReady && !this.stopped) {
        this.opts.logger.warn({ code, reason: reason.toString() }, 'lost the connection to the hub; running on from the last target');
        this.lastProblem = 'disconnected';
      }
      this.scheduleReconnect();
    });
  }

  /** A 401 at the upgrade: final when the hub says the node was removed; else the other credential is tried next. */
  private unauthorized(body: string): void {
    let error: { code?: unknown; message?: unknown } = {};
    try {
      error = ((JSON.parse(body) as { error?: typeof error }).error ?? {}) as typeof error;
    } catch {
      // no JSON: an unknown credential as far as we can tell
    }
    const message = typeof error.message === 'string' ? error.message : 'unknown or invalid node credential';
    if (error.code === NODE_REMOVED_ERROR_CODE) return this.removedByHub(message);
    if (this.fallback !== null) {
      // The hub did not store the credential of a rotation (it died first): the one kept works.
      [this.credential, this.fallback] = [this.fallback, this.credential];
      this.reconnectNow = true;
    }
    this.report(`hub refused the connection: HTTP 401 (${message}; if the node was removed, join again with a new join token)`);
  }

  /** Removed by the operator: no attempt again, one line, and the agent hears of it. */
  private removedByHub(reason: string): void {
    if (this.removed) return;
    this.removed = true;
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopHeartbeat();
    this.ws?.terminate();
    this.opts.onRemoved?.(reason);
  }

  /**
   * A new credential: kept on disk first (by the agent), then acknowledged, then this connection
   * closes and the next one uses it. One per connection: a second is ignored (the hub allows one
   * rotation at a time, and will time it out).
   */
  private takeCredential(ws: WebSocket, frame: CredentialFrame): void {
    const onCredential = this.opts.onCredential;
    if (!onCredential || this.credentialTakenOn === ws) return;
    this.credentialTakenOn = ws;
    const current = this.attemptCredential;
    onCredential(frame, current).then(
      () => {
        this.credential = frame.credential;
        this.fallback = current;
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(encodeFrame({ type: 'credentialSaved', rotation: frame.rotation }));
        this.opts.logger.info({}, 'stored a new node credential from the hub; connecting with it');
        ws.close(1000, 'connecting with the new credential');
      },
      (error: unknown) => {
        // Not acknowledged, so the hub keeps the current digest; an operator may try again on this connection.
        if (this.credentialTakenOn === ws) this.credentialTakenOn = null;
        this.opts.logger.error({ err: (error as Error).message }, 'could not store the new node credential from the hub; keeping the current one');
      },
    );
  }

  /**
   * The hub's certificate does not chain to the pinned CA: said with both fingerprints (read by
   * a second connection that trusts nothing), and tried again like any failure: the hub that
   * belongs on that address may come back.
   */
  private reportPinMismatch(url: URL, pinned: string): void {
    const httpsUrl = new URL(url.origin.replace(/^wss:/, 'https:'));
    void presentedCaFingerprint(httpsUrl).then((presented) => {
      if (!this.stopped) this.report(new PinMismatchError(httpsUrl.origin, pinned, presented).message);
    });
  }

  private report(problem: string): void {
    if (problem === this.lastProblem) return;
    this.lastProblem = problem;
    this.opts.logger.warn({}, problem);
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delayMs = this.reconnectNow ? 0 : this.schedule.nextDelayMs(this.lastOutcome);
    this.reconnectNow = false;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    // One interval more than the hub's silence alone would need: an idle hub is pinged only every
    // other interval (below), so a slow link's pong must not have to come back within one.
    const staleMs = intervalMs * ((this.opts.staleAfterIntervals ?? 3) + 1);
    // Set after the welcome moved lastHubActivityMs, so the first tick pings unless the hub spoke since.
    let lastTickMs = performance.now();
    this.heartbeatTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      if (performance.now() - this.lastHubActivityMs > staleMs) {
        this.opts.logger.warn({ staleMs }, 'hub silent; dropping the connection and reconnecting');
        ws.terminate();
        return;
      }
      ws.send(encodeFrame({ type: 'heartbeat' }));
      // The hub answers pings by itself; a pong is proof the path works both ways. Any hub frame is
      // proof too, so a ping goes out only when the hub said nothing since the previous tick (an
      // interval of silence; measured against the tick, not intervalMs, as timers fire late by a
      // little and a pong comes back within a millisecond on a LAN: "silent >= intervalMs" would
      // ping an idle hub at nearly every tick). A hub that talks (targets) is not pinged at all,
      // an idle one every other interval. Each pong costs the hub a socket write, and on metered
      // links each byte costs.
      // Dead-hub detection takes at most one interval longer than when every tick pinged: the
      // stale check depends only on the last time the hub spoke (L), a dead hub speaks no more,
      // and the link is dropped at the first tick past L + staleMs (4 intervals by default).
      // A live hub is not judged stale while its pongs return within two and a half intervals,
      // more than when every tick pinged (a test holds a link of that round trip).
      const heardSinceLastTick = this.lastHubActivityMs > lastTickMs;
      lastTickMs = performance.now();
      if (!heardSinceLastTick) ws.ping();
    }, intervalMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }
}
