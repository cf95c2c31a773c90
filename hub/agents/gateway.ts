import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Clock } from '../../shared/clock.js';
import { decodeAgentFrame, encodeFrame } from '../../shared/codec.js';
import { frameText } from '../target-frame.js';
import {
  AGENT_PATH,
  CloseCode,
  CONDITIONS_MIN_FRAME_INTERVAL_MS,
  CREDENTIAL_ROTATION_PROTOCOL_VERSION,
  LOGS_PROTOCOL_VERSION,
  NODE_REMOVED_ERROR_CODE,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  type AgentLogsFrame,
  type HelloFrame,
  type HubFrame,
  type NodeConditions,
  type ReplicaReport,
} from '../../shared/protocol.js';
import { AuthFailures, DEFAULT_AUTH_FAILURE_LIMITS } from '../auth/auth-failures.js';
import { bearerToken, parseNodeCredential, sameDigest } from '../auth/secrets.js';
import { MAX_BELIEVED_GENERATION } from '../dispatcher.js';
import { NodeSlots, NodeValues } from '../node-slots.js';
import type { FailureDetector } from '../failure-detector.js';
import { RateLimitedLog } from '../rate-limited-log.js';
import type { Store } from '../store/store.js';
import { defaultPerAddressLimit, HandshakeAdmission, type HandshakeTicket } from './handshake-admission.js';
import { HandshakeLoad } from './handshake-load.js';
import { AgentSocket } from './agent-socket.js';
import { SocketFaults } from './socket-faults.js';
import type { Logger } from '../../shared/logger.js';

/** What the hub does with a node's frames; the gateway only handles transport, auth and framing. */
export interface GatewayHandlers {
  /**
   * The node's conditions, whole: from its hello (null from a version 1 agent, which reports none)
   * or a `conditions` frame. Called before the node's liveness changes, so that what is logged
   * about the change can say why.
   */
  onConditions?(nodeId: string, conditions: NodeConditions | null): void;
  onHello(nodeId: string, hello: HelloFrame): void;
  onStatus(nodeId: string, reports: ReplicaReport[]): void;
  /** The agent stored the credential of `rotation` (version 7). */
  onCredentialSaved?(nodeId: string, rotation: string): void;
  onDisconnect(nodeId: string): void;
}

/** Where the agents' log frames go (hub/logs/log-relay.ts); the gateway only checks they belong to the protocol. */
export interface AgentLogsSink {
  frame(nodeId: string, frame: AgentLogsFrame): void;
  /** A connection that said hello ended: its log streams are over. */
  connectionEnded(nodeId: string): void;
}

export interface GatewayOptions {
  store: Store;
  clock: Clock;
  detector: FailureDetector;
  /** The node slots its sessions share with the hub's other per-node tables (its own when not given). */
  slots?: NodeSlots;
  logger: Logger;
  handlers: GatewayHandlers;
  heartbeatIntervalMs: number;
  /** Handshakes (upgrade to hello) in progress at once; beyond it agents get 503 and back off. */
  maxPendingHandshakes: number;
  /**
   * Refused credentials count against their address: slowed, then refused with 429 before the
   * upgrade. The hub's table, shared with the API; absent, one of the gateway's own with the defaults.
   */
  authFailures?: AuthFailures;
  /** Of those, at most this many from one remote address (or IPv6 /64); three quarters of the pool by default. */
  maxPendingHandshakesPerAddress?: number;
  /** At most one `conditions` frame per node is applied per this long; CONDITIONS_MIN_FRAME_INTERVAL_MS by default. */
  conditionsIntervalMs?: number;
}

/** One agent connection: the gateway's session is the socket itself (see agent-socket.ts). */
type Session = AgentSocket;

/** The session of a WebSocket the gateway's server made: the listeners are shared, and find it through `this`. */
function sessionOf(ws: WebSocket): Session {
  // Its node is set before any listener is added (see onConnection).
  if (!(ws instanceof AgentSocket) || ws.nodeId === '') throw new Error('agent WebSocket without a session');
  return ws;
}

/** Codes a WebSocket close frame may carry (RFC 6455 7.4; ws throws on the others). */
function sendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/**
 * What a report carries beyond the agent's protocol version, in words, or null: health (protocol 3),
 * a crash loop (protocol 4), pull progress (protocol 5). An older agent that sends one breaks its
 * own protocol.
 */
function reportFieldsBeyond(version: number, reports: readonly ReplicaReport[]): string | null {
  if (version >= 5) return null;
  for (const r of reports) {
    if (version < 3 && r.health !== undefined) return 'replica health';
    if (version < 4 && r.crashLoop !== undefined) return 'a replica crash loop';
    if (r.pull !== undefined) return 'pull progress';
  }
  return null;
}

/**
 * Removed nodes the hub remembers, so that their agents' upgrades hear they were removed (a final
 * answer) rather than only that their credential is unknown: the newest this many, in memory. A
 * hub restarted since answers such an agent as any unknown credential.
 */
export const MAX_REMEMBERED_REMOVALS = 10_000;

/**
 * Node keeps a socket's peer address (an object and a string, some 90 bytes) from its first read
 * for as long as the socket lives; the gateway reads it only to admit the upgrade. Dropped once
 * the connection is up, so tens of thousands of connections do not hold it: a later read asks
 * the kernel again. (Set to undefined, not deleted: the socket keeps its shape.)
 */
function forgetPeerAddress(socket: Duplex): void {
  const cached = socket as Duplex & { _peername?: unknown };
  if (cached._peername) cached._peername = undefined;
}

/** The 123-byte limit of a WebSocket close reason. */
function closeReason(text: string): string {
  const buf = Buffer.from(text);
  return buf.length <= 123 ? text : `${buf.subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '')}...`;
}

/**
 * The WebSocket endpoint agents keep open. Authenticates the node credential at the upgrade (a
 * bad credential never gets a socket), expects hello first, validates every frame, and keeps one
 * session per node (a new connection replaces the old one).
 */
export class AgentGateway {
  private readonly wss: WebSocketServer;
  /** Sessions past their hello, by node. */
  private readonly sessions: NodeValues<Session>;
  private readonly admission: HandshakeAdmission;
  private readonly authFailures: AuthFailures;
  /** Errors on clients' sockets (resets and the like): counted, never fatal. */
  readonly socketFaults: SocketFaults;
  /** Upgrades refused because the whole handshake pool was in use. */
  refusedBusy = 0;
  /** Upgrades refused with 401 (no, unknown or wrong node credential, a removed node's included). */
  refusedUnauthorized = 0;
  /** Of those, the upgrades of nodes the hub remembers removing. */
  refusedRemoved = 0;
  /** Removed node id -> when (ISO), oldest first, at most MAX_REMEMBERED_REMOVALS. */
  private readonly removedNodes = new Map<string, string>();
  /**
   * Nodes whose new credential is being written to the store: their upgrades wait (503), since
   * memory holds the new digest before the disk does, and a refused write puts the old one back.
   */
  private readonly credentialsStoring = new Set<string>();
  /** Upgrades refused with 404 (not the agent endpoint). */
  refusedNotFound = 0;
  sessionsReplaced = 0;
  /** `conditions` frames that came within the interval of the one before: held back, and the older of them never applied. */
  conditionsHeld = 0;
  private readonly conditionsIntervalMs: number;
  private logSink: AgentLogsSink | null = null;
  /**
   * Acks claiming a generation never made for the node, and hellos claiming one past
   * MAX_BELIEVED_GENERATION: forged (see onMessage). Worth an alert.
   */
  acksRefused = 0;
  /**
   * Hellos claiming a generation above the store's, but believable: once per node after a store
   * restored from an older copy, otherwise a forged hello. The node's next target goes above it.
   */
  helloGenerationsAhead = 0;
  /**
   * Refused credentials are worth a warning (a removed node, a leaked or mistyped credential), but
   * one line a second at most, however many arrive.
   */
  private readonly refusedCredentialLog: RateLimitedLog;
  /** The pool's busy refusals and admissions: sizes Retry-After (an address's own refusals size its own). */
  private readonly load = new HandshakeLoad();
  /**
   * The listeners of every agent WebSocket, made once: each finds its session through the socket
   * (`this`). Closures made per connection, and the context they keep, would cost each of the tens
   * of thousands of connections the hub holds a few hundred bytes.
   */
  private readonly socketListeners: {
    message: (this: WebSocket, data: RawData, isBinary: boolean) => void;
    close: (this: WebSocket) => void;
    error: (this: WebSocket, error: Error & { code?: string }) => void;
  };

  constructor(private readonly opts: GatewayOptions) {
    this.sessions = new NodeValues(opts.slots ?? new NodeSlots());
    this.admission = new HandshakeAdmission({
      maxPending: opts.maxPendingHandshakes,
      maxPendingPerAddress: opts.maxPendingHandshakesPerAddress ?? defaultPerAddressLimit(opts.maxPendingHandshakes),
    });
    this.socketFaults = new SocketFaults(opts.logger);
    this.authFailures = opts.authFailures ?? new AuthFailures(DEFAULT_AUTH_FAILURE_LIMITS, () => performance.now());
    this.conditionsIntervalMs = opts.conditionsIntervalMs ?? CONDITIONS_MIN_FRAME_INTERVAL_MS;
    this.refusedCredentialLog = new RateLimitedLog((obj, msg) => opts.logger.warn(obj, msg));
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: PROTOCOL_LIMITS.maxAgentFrameBytes,
      // Gives the closes ws makes over a refused frame (1002, 1007, 1009) a reason.
      WebSocket: AgentSocket,
      // Frames are small JSON; compression would cost memory per connection for little gain.
      perMessageDeflate: false,
      clientTracking: false,
    });
    const gateway = this;
    this.socketListeners = {
      message(data, isBinary) {
        const session = sessionOf(this);
        try {
          gateway.onMessage(session, data, isBinary);
        } catch (error) {
          // A fault in handling one node's frame ends that node's connection, never the hub: thrown
          // from here it would be an uncaught exception, and a client could stop the hub at will.
          gateway.opts.logger.error({ nodeId: session.nodeId, err: error }, 'handling an agent frame failed; closing its connection');
          gateway.closeSession(session, 1011, 'internal error handling the frame');
        }
      },
      close() {
        gateway.endSession(sessionOf(this));
      },
      error(error) {
        // ws closes the socket itself after an error such as an oversized frame (1009).
        gateway.opts.logger.warn({ nodeId: sessionOf(this).nodeId, code: error.code, err: error.message }, 'agent connection error');
      },
    };
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
  }

  /** Sessions past their hello. */
  get connectedCount(): number {
    return this.sessions.size;
  }

  get pendingHandshakeCount(): number {
    return this.admission.pendingCount;
  }

  /** Upgrades refused because their remote address held its share of the handshake pool. */
  get refusedAddressBusy(): number {
    return this.admission.refusedAddressBusy;
  }

  /** Pending handshakes ended by a newer upgrade of the same node. */
  get handshakesSuperseded(): number {
    return this.admission.superseded;
  }

  /**
   * The node's applied generation, and how many of its replicas still wait for their images (a
   * partial ack); null while the node has no session, pending null when its agent does not say.
   */
  applied(nodeId: string): { generation: number; pending: number | null } | null {
    const session = this.sessions.get(nodeId);
    return session ? { generation: session.appliedGeneration, pending: session.pendingReplicas } : null;
  }

  /** The protocol version the node's agent said hello with; null while the node has no session. */
  protocolVersion(nodeId: string): number | null {
    return this.sessions.get(nodeId)?.protocolVersion ?? null;
  }

  /** Sends to a node that has said hello; false if it has no live session. */
  send(nodeId: string, frame: HubFrame): boolean {
    const session = this.sessions.get(nodeId);
    if (!session || session.closed || session.livenessHandle < 0) return false;
    session.send(frameText(frame));
    return true;
  }

  /** Log frames from agents go to `sink` from now on; before, they are dropped. */
  attachLogs(sink: AgentLogsSink): void {
    this.logSink = sink;
  }

  /** Drops a node's connection (silent node, removed node). */
  disconnect(nodeId: string, code: number, reason: string): void {
    const session = this.sessions.get(nodeId);
    if (!session) {
      this.opts.detector.disconnected(nodeId);
      return;
    }
    this.closeSession(session, code, reason);
  }

  /**
   * The node was removed (its record is gone from the store): its connection closes with
   * nodeRemoved, and later upgrades of its credential hear why. (A handshake already past its
   * upgrade is closed the same way at its hello, which finds no record.)
   */
  nodeRemoved(nodeId: string, reason: string): void {
    this.removedNodes.delete(nodeId);
    this.removedNodes.set(nodeId, new Date().toISOString());
    if (this.removedNodes.size > MAX_REMEMBERED_REMOVALS) this.removedNodes.delete(this.removedNodes.keys().next().value as string);
    this.disconnect(nodeId, CloseCode.nodeRemoved, reason);
  }

  /** Holds the node's upgrades (503, retry soon) while its new credential is being stored; the returned call lets them in again. */
  holdUpgrades(nodeId: string): () => void {
    this.credentialsStoring.add(nodeId);
    return () => this.credentialsStoring.delete(nodeId);
  }

  async close(): Promise<void> {
    // Handshakes before hello too: the server's close would otherwise wait for their hello timeout.
    this.admission.endAll();
    for (const session of [...this.sessions.each()]) this.closeSession(session, CloseCode.goingAway, 'hub shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // First of all: once the HTTP server hands an upgrade over it no longer listens for the
    // socket's errors, and a reset from the client would be an uncaught exception.
    this.socketFaults.watch(socket, 'agent upgrade');
    // Reset before its request was handled: nothing to answer, no slot to take.
    if (socket.destroyed) return;
    const url = req.url ?? '';
    if (url.split('?')[0] !== AGENT_PATH) {
      this.refusedNotFound++;
      return this.refuse(socket, 404, 'Not Found', `no WebSocket endpoint at ${url.slice(0, 100)}`);
    }
    // Authenticate before admission: it costs a hash and a map lookup, and a client without a
    // credential must never take a slot or displace a node's handshake.
    const credential = bearerToken(req.headers.authorization);
    const parsed = credential ? parseNodeCredential(credential) : null;
    const node = parsed ? this.opts.store.getNode(parsed.nodeId) : undefined;
    const removedAt = parsed && !node ? this.removedNodes.get(parsed.nodeId) : undefined;
    if (removedAt !== undefined) {
      // Said apart so that the agent stops for good (it cannot tell a removal from a hub that lost its record otherwise).
      this.refusedUnauthorized++;
      this.refusedRemoved++;
      return this.refuseCredential(req, socket, `node removed by the operator at ${removedAt}: join again with a new join token`, NODE_REMOVED_ERROR_CODE);
    }
    if (parsed && node && this.credentialsStoring.has(node.id)) {
      return this.refuse(socket, 503, 'Service Unavailable', "the node's new credential is being stored; retry", 1);
    }
    if (!parsed || !node || !sameDigest(node.credentialHash, parsed.secretHash)) {
      this.refusedUnauthorized++;
      this.refusedCredentialLog.log({ remote: req.socket.remoteAddress }, 'agent connection refused: unknown or invalid node credential');
      return this.refuseCredential(req, socket, 'unknown or invalid node credential');
    }
    // A reconnect storm (every agent after a hub restart) is admitted a slice at a time; the
    // rest back off with jitter and come again, instead of all handshakes starving each other.
    const admitted = this.admission.admit(node.id, req.socket.remoteAddress);
    const now = performance.now();
    if (!admitted.ok) {
      if (admitted.reason === 'busy') {
        this.refusedBusy++;
        this.load.count('refused', now);
        return this.refuse(socket, 503, 'Service Unavailable', 'hub busy with other agents connecting; retry later', this.load.retryAfterS(now));
      }
      // Sized by the address's own queue (and no shorter than the pool's): its refusals never
      // count toward the pool's estimate, so a greedy address lengthens no one else's wait.
      const retryAfterS = Math.max(admitted.retryAfterS, this.load.retryAfterS(now));
      return this.refuse(socket, 503, 'Service Unavailable', 'too many agents connecting from this address at once; retry later', retryAfterS);
    }
    this.load.count('admitted', now);
    const ticket = admitted.ticket;
    // Until the WebSocket exists, ending a superseded handshake means dropping its socket.
    ticket.end = () => socket.destroy();
    const release = () => ticket.release();
    socket.once('close', release);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // From here the session releases the slot (at hello, or when its WebSocket closes): nothing
      // of the upgrade stays on a socket the hub holds for as long as the node is connected.
      socket.removeListener('close', release);
      forgetPeerAddress(socket);
      this.onConnection(ws, node.id, ticket);
    });
  }

  /**
   * A refused credential: 401, counted against the upgrade's address. Past its allowance the
   * answer comes late (the socket is held that long, a few at a time per address), then, for a
   * while, a 429 before any upgrade, without the credential's reason.
   */
  private refuseCredential(req: IncomingMessage, socket: Duplex, message: string, errorCode?: string): void {
    const verdict = this.authFailures.failed(req.socket.remoteAddress, 'node_credential');
    if (verdict.action === 'refuse') {
      return this.refuse(socket, 429, 'Too Many Requests', 'too many failed authentications from this address; retry later', verdict.retryAfterS, 'too_many_failures');
    }
    if (verdict.action === 'answer') return this.refuse(socket, 401, 'Unauthorized', message, undefined, errorCode);
    setTimeout(() => this.refuse(socket, 401, 'Unauthorized', message, undefined, errorCode), verdict.delayMs).unref();
  }

  private refuse(socket: Duplex, status: number, statusText: string, message: string, retryAfterS?: number, errorCode?: string): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const code = errorCode ?? (status === 401 ? 'unauthorized' : status === 503 ? 'busy' : 'not_found');
    const body = JSON.stringify({ error: { code, message } });
    const retryAfter = retryAfterS === undefined ? '' : `Retry-After: ${retryAfterS}\r\n`;
    // Destroyed once the answer is out: a client that never closes its side must not leave the
    // socket half-open (the server allows half-open sockets), holding a descriptor each.
    socket.once('finish', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${statusText}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retryAfter}Connection: close\r\n\r\n${body}`,
    );
  }

  private onConnection(ws: WebSocket, nodeId: string, handshake: HandshakeTicket): void {
    // The session joins the node's slot only at its hello: an upgrade its agent already gave up
    // on (stuck in a busy hub's queue) must never displace the node's live session.
    const session = ws as Session;
    session.nodeId = nodeId;
    session.handshake = handshake;
    handshake.end = (why) => {
      // Not a protocol violation, and possibly a flood of them: counted, not logged.
      if (why === 'closing') this.closeSession(session, CloseCode.goingAway, 'hub shutting down');
      else this.closeSession(session, CloseCode.replaced, 'replaced by a newer handshake of the same node');
    };
    session.helloTimer = setTimeout(() => {
      this.reject(session, CloseCode.helloTimeout, `no hello within ${PROTOCOL_LIMITS.helloTimeoutMs} ms`);
    }, PROTOCOL_LIMITS.helloTimeoutMs);
    ws.on('message', this.socketListeners.message);
    ws.on('close', this.socketListeners.close);
    ws.on('error', this.socketListeners.error);
  }

  private onMessage(session: Session, data: RawData, isBinary: boolean): void {
    if (session.closed) return;
    if (isBinary) return this.reject(session, CloseCode.badFrame, 'binary frames are not part of the protocol');
    // ws hands over a Buffer (its default binary type): decoded as it is, not copied first.
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const decoded = decodeAgentFrame(bytes);
    if (!decoded.ok) return this.reject(session, CloseCode.badFrame, decoded.reason);
    const frame = decoded.frame;

    if (session.livenessHandle < 0) {
      if (frame.type !== 'hello') return this.reject(session, CloseCode.badFrame, `expected hello first, got ${frame.type}`);
      if (frame.protocolVersion < MIN_PROTOCOL_VERSION || frame.protocolVersion > PROTOCOL_VERSION) {
        return this.reject(
          session,
          CloseCode.versionMismatch,
          `protocol version ${frame.protocolVersion} is not supported: this hub speaks versions ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
        );
      }
      if (frame.conditions !== undefined && frame.protocolVersion < 2) {
        return this.reject(session, CloseCode.badFrame, `conditions are not part of protocol version ${frame.protocolVersion}`);
      }
      const beyondHello = reportFieldsBeyond(frame.protocolVersion, frame.replicas);
      if (beyondHello !== null) {
        return this.reject(session, CloseCode.badFrame, `${beyondHello} is not part of protocol version ${frame.protocolVersion}`);
      }
      session.protocolVersion = frame.protocolVersion;
      if (session.helloTimer) clearTimeout(session.helloTimer);
      session.helloTimer = null;
      session.handshake?.release();
      session.handshake = null;
      const previous = this.sessions.get(session.nodeId);
      if (previous) {
        // The node is connected twice (a new connection before the old one was noticed dead):
        // the newer one wins; the node stays ready throughout.
        this.opts.logger.info({ nodeId: session.nodeId }, 'node connected again; closing its previous connection');
        // Out of the map first: the node does not go away meanwhile, so its liveness stays.
        this.sessions.delete(session.nodeId);
        this.sessionsReplaced++;
        this.closeSession(previous, CloseCode.replaced, 'replaced by a newer connection of the same node');
      }
      this.sessions.set(session.nodeId, session);
      // As for an ack, a generation never made for the node is not taken as applied (0: unknown).
      // Unlike an ack, a hello ahead of the store is what a store restored from an older copy
      // shows: counted apart, and the dispatcher moves the node's next target above it.
      const made = this.madeGeneration(session.nodeId);
      if (frame.appliedGeneration <= made) {
        session.appliedGeneration = frame.appliedGeneration;
      } else if (frame.appliedGeneration <= MAX_BELIEVED_GENERATION) {
        session.aheadClaim = frame.appliedGeneration;
        this.helloGenerationsAhead++;
        this.opts.logger.warn(
          { nodeId: session.nodeId, appliedGeneration: frame.appliedGeneration, storeGeneration: made },
          'node says it applied a generation ahead of the store (a store restored from an older copy, or a forged hello): its next target goes above it',
        );
      } else {
        this.acksRefused++;
      }
      const conditions = frame.conditions ?? null;
      this.opts.handlers.onConditions?.(session.nodeId, conditions);
      session.livenessHandle = this.opts.detector.connected(session.nodeId, conditions?.engine.available ?? true);
      session.send(
        encodeFrame({
          type: 'welcome',
          // The agent's own version: the hub speaks it on this connection.
          protocolVersion: frame.protocolVersion,
          nodeId: session.nodeId,
          heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
        }),
      );
      this.opts.handlers.onHello(session.nodeId, frame);
      return;
    }

    this.opts.detector.seen(session.nodeId, session.livenessHandle);
    switch (frame.type) {
      case 'heartbeat':
        return;
      case 'ack':
        // Only a generation the hub has made for this node can have been applied: a larger one
        // would show the node as up to date with a target it was never sent.
        if (frame.pending !== undefined && session.protocolVersion < 2) {
          return this.reject(session, CloseCode.badFrame, `ack.pending is not part of protocol version ${session.protocolVersion}`);
        }
        if (frame.generation > this.madeGeneration(session.nodeId)) {
          // The agent acks what its hello claimed (a pending count, say): not believed, not forged.
          if (frame.generation > session.aheadClaim) this.acksRefused++;
          return;
        }
        session.appliedGeneration = frame.generation;
        session.pendingReplicas = frame.pending ?? (session.protocolVersion >= 2 ? 0 : null);
        return;
      case 'status':
        const beyond = reportFieldsBeyond(session.protocolVersion, frame.replicas);
        if (beyond !== null) {
          return this.reject(session, CloseCode.badFrame, `${beyond} is not part of protocol version ${session.protocolVersion}`);
        }
        this.opts.handlers.onStatus(session.nodeId, frame.replicas);
        return;
      case 'conditions':
        if (session.protocolVersion < 2) {
          return this.reject(session, CloseCode.badFrame, `conditions frames are not part of protocol version ${session.protocolVersion}`);
        }
        return this.offerConditions(session, frame.conditions);
      case 'hello':
        return this.reject(session, CloseCode.badFrame, 'hello sent twice on one connection');
      case 'credentialSaved':
        if (session.protocolVersion < CREDENTIAL_ROTATION_PROTOCOL_VERSION) {
          return this.reject(session, CloseCode.badFrame, `credentialSaved frames are not part of protocol version ${session.protocolVersion}`);
        }
        this.opts.handlers.onCredentialSaved?.(session.nodeId, frame.rotation);
        return;
      case 'logs.chunk':
      case 'logs.end':
      case 'logs.error':
        if (session.protocolVersion < LOGS_PROTOCOL_VERSION) {
          return this.reject(session, CloseCode.badFrame, `${frame.type} frames are not part of protocol version ${session.protocolVersion}`);
        }
        this.logSink?.frame(session.nodeId, frame);
        return;
    }
  }

  /**
   * Applies a `conditions` frame, or holds it back when one was applied less than the interval
   * ago: the agent promises no more, but a device that floods must not cost the hub a log line
   * and a state change per frame. The latest held frame is applied when the interval ends, so the
   * node's last word always lands; one timer per session at most.
   */
  private offerConditions(session: Session, conditions: NodeConditions): void {
    const waitMs = session.conditionsAppliedMs === null ? 0 : session.conditionsAppliedMs + this.conditionsIntervalMs - performance.now();
    if (waitMs <= 0 && session.conditionsTimer === null) return this.applyConditions(session, conditions);
    this.conditionsHeld++;
    session.heldConditions = conditions;
    if (session.conditionsTimer !== null) return;
    session.conditionsTimer = setTimeout(() => {
      session.conditionsTimer = null;
      const held = session.heldConditions;
      session.heldConditions = null;
      if (held === null || session.closed) return;
      try {
        this.applyConditions(session, held);
      } catch (error) {
        // As for a frame handled at once: that node's connection ends, never the hub.
        this.opts.logger.error({ nodeId: session.nodeId, err: error }, 'handling an agent frame failed; closing its connection');
        this.closeSession(session, 1011, 'internal error handling the frame');
      }
    }, Math.max(0, waitMs));
    session.conditionsTimer.unref();
  }

  private applyConditions(session: Session, conditions: NodeConditions): void {
    session.conditionsAppliedMs = performance.now();
    this.opts.handlers.onConditions?.(session.nodeId, conditions);
    if (session.livenessHandle >= 0) this.opts.detector.engineReported(session.nodeId, session.livenessHandle, conditions.engine.available);
  }

  /** Closes one connection over a bad frame, logged once; everyone else is unaffected. */
  private reject(session: Session, code: number, reason: string): void {
    if (session.closed) return;
    this.opts.logger.warn({ nodeId: session.nodeId, closeCode: code, reason }, 'agent connection closed: protocol violation');
    this.closeSession(session, code, reason);
  }

  /** The newest generation the hub has made for the node: no node can have applied a later one. */
  private madeGeneration(nodeId: string): number {
    return this.opts.store.getNode(nodeId)?.generation ?? 0;
  }

  /**
   * Closes a connection with `code` and `reason`, and ends its session now. A peer that does not
   * answer the close handshake (silent, gone, hostile) is cut a second later, so its socket is
   * freed either way.
   */
  private closeSession(session: Session, code: number, reason: string): void {
    if (session.closed) return;
    // Codes a close frame cannot carry (1005, 1006 and the like) end the connection without one.
    if (sendableCloseCode(code)) session.close(code, closeReason(reason));
    setTimeout(() => session.terminate(), 1000).unref();
    this.endSession(session);
  }

  private endSession(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    if (session.helloTimer) clearTimeout(session.helloTimer);
    if (session.conditionsTimer) clearTimeout(session.conditionsTimer);
    session.conditionsTimer = null;
    const held = session.heldConditions;
    session.heldConditions = null;
    session.handshake?.release();
    session.handshake = null;
    // Replaced or gone, this connection's log streams are over: the agent ends its side too.
    if (session.livenessHandle >= 0) this.logSink?.connectionEnded(session.nodeId);
    if (this.sessions.get(session.nodeId) === session) {
      // The node's last word lands before it counts as away: an engine back again, held by the
      // rate limit, must not date the node's away-time from the engine's outage.
      if (held !== null && session.livenessHandle >= 0) {
        try {
          this.applyConditions(session, held);
        } catch (error) {
          this.opts.logger.error({ nodeId: session.nodeId, err: error }, 'handling an agent frame failed');
        }
      }
      this.sessions.delete(session.nodeId);
      if (session.livenessHandle >= 0) {
        this.opts.detector.disconnected(session.nodeId);
        this.opts.handlers.onDisconnect(session.nodeId);
      }
    }
  }
}
