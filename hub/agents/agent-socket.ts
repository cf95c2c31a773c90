import { WebSocket } from 'ws';
import { PROTOCOL_LIMITS } from '../../shared/protocol.js';

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
 * An agent's WebSocket (the gateway's server makes these): a close without a reason, which only
 * ws's own refusal of a frame makes, gets one. A class, not a closure per socket, so that the tens
 * of thousands of connections pay nothing for it.
 */
export class AgentSocket extends WebSocket {
  override close(code?: number, reason?: string | Buffer): void {
    const why = reason === undefined && code !== undefined ? REFUSED_FRAME_REASONS.get(code) : undefined;
    super.close(code, why ?? reason);
  }
}
