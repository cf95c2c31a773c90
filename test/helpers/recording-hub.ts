/**
 * A stand-in hub for agent tests: accepts any agent at the agent path, welcomes its hello, and
 * records every frame it sends. Targets go out when the test says.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeAgentFrame, encodeFrame } from '../../shared/codec.js';
import { AGENT_PATH, PROTOCOL_VERSION, type AgentFrame, type TargetFrame } from '../../shared/protocol.js';

export class RecordingHub {
  /** Every frame from every connection, in order. */
  readonly frames: AgentFrame[] = [];
  private readonly server = http.createServer();
  private readonly wss = new WebSocketServer({ noServer: true });
  private socket: WebSocket | null = null;
  /** While set, hellos are recorded but their welcomes wait (a hub busy with handshakes). */
  private heldWelcomes: Array<() => void> | null = null;

  private constructor() {
    this.server.on('upgrade', (req, sock, head) => {
      if (new URL(req.url ?? '/', 'http://hub').pathname !== AGENT_PATH) return sock.destroy();
      this.wss.handleUpgrade(req, sock, head, (ws) => this.accept(ws));
    });
  }

  /** Port 0 picks one; a given port brings a hub back where its agents look for it. */
  static async start(port = 0): Promise<RecordingHub> {
    const hub = new RecordingHub();
    await new Promise<void>((resolve) => hub.server.listen(port, '127.0.0.1', resolve));
    return hub;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  ofType<T extends AgentFrame['type']>(type: T): Array<Extract<AgentFrame, { type: T }>> {
    return this.frames.filter((f): f is Extract<AgentFrame, { type: T }> => f.type === type);
  }

  sendTarget(target: Omit<TargetFrame, 'type'>): void {
    this.socket?.send(encodeFrame({ type: 'target', ...target }));
  }

  /** From now on, welcomes wait for releaseWelcomes(). */
  holdWelcomes(): void {
    this.heldWelcomes ??= [];
  }

  /** Sends the welcomes held back, and welcomes at once again. */
  releaseWelcomes(): void {
    const held = this.heldWelcomes ?? [];
    this.heldWelcomes = null;
    for (const welcome of held) welcome();
  }

  /** Drops the connection (the agent reconnects). */
  cut(): void {
    this.socket?.terminate();
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(ws: WebSocket): void {
    this.socket = ws;
    ws.on('error', () => ws.terminate());
    ws.on('message', (data) => {
      const decoded = decodeAgentFrame(data as Buffer);
      if (!decoded.ok) throw new Error(`bad frame from the agent: ${decoded.reason}`);
      this.frames.push(decoded.frame);
      if (decoded.frame.type === 'hello') {
        const welcome = () => ws.send(encodeFrame({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, nodeId: 'node-1', heartbeatIntervalMs: 1000 }));
        if (this.heldWelcomes) this.heldWelcomes.push(welcome);
        else welcome();
      }
    });
  }
}
