import { WebSocket } from 'ws';
import { PROTOCOL_LIMITS, type NodeConditions } from '../../shared/protocol.js';
import type { HandshakeTicket } from './handshake-admission.js';

/**
 * Why ws closed a connection over a frame it refused itself (before the hub saw it): ws sends
 * only the code, and an agent's log would then say nothing of why.
 */
const REFUSED_FRAME_REASONS: ReadonlyMap<number, string> = new Map([
  [1002, 'broken WebSocket frame (bad opcode, flags or masking)'],
  [1007, 'frame text is not valid UTF-8'],
  [1009, `frame larger than the ${PROTOCOL_LIMITS.maxAgentFrameBytes} bytes the hub accepts`],
]);

/**
 * An agent's WebSocket (the gateway's server makes these), which is also the gateway's session of
 * the connection: the session's fields live on the socket rather than in an object beside it (its
 * header and a reference each way, some 40 bytes on each of tens of thousands of connections).
 * A close without a reason, which only ws's own refusal of a frame makes, gets one. A class, not a
 * closure per socket, so that the connections pay nothing for it.
 */
export class AgentSocket extends WebSocket {
  /** The node that connected, set once its upgrade is admitted (empty until then). */
  nodeId = '';
  /** The hello deadline, until hello. */
  helloTimer: NodeJS.Timeout | null = null;
  /** This connection's slot among the pending handshakes, released at hello or on close. */
  handshake: HandshakeTicket | null = null;
  /** The node's handle in the failure detector, from its hello on; -1 until then. */
  livenessHandle = -1;
  appliedGeneration = 0;
  /**
   * A generation this connection's hello claimed ahead of the store (already counted and logged):
   * acks up to it repeat the claim, not a forgery, until the node's next target goes above it.
   */
  aheadClaim = 0;
  /** Replicas of `appliedGeneration` still waiting for their images (version 2); null: not said. */
  pendingReplicas: number | null = null;
  /** The version the hello said; frames beyond it are bad frames. */
  protocolVersion = 0;
  /** Monotonic time the last `conditions` frame was applied; null: none yet (no number boxed per connection for it). */
  conditionsAppliedMs: number | null = null;
  /** The latest `conditions` frame held back until the interval ends, and the timer that applies it. */
  heldConditions: NodeConditions | null = null;
  conditionsTimer: NodeJS.Timeout | null = null;
  closed = false;

  override close(code?: number, reason?: string | Buffer): void {
    const why = reason === undefined && code !== undefined ? REFUSED_FRAME_REASONS.get(code) : undefined;
    super.close(code, why ?? reason);
  }
}
