/**
 * A device that speaks the agent protocol by hand, for sim tests that must say exactly what a node
 * of some protocol version sends and sees: it joins (or connects again as the same node), says
 * hello, heartbeats, and keeps every target it is sent.
 */
import WebSocket from 'ws';
import type { HelloFrame, ReplicaReport, TargetFrame } from '../../shared/protocol.js';
import { helloFrame, type SimFleet } from './sim-fleet.js';

export class RawDevice {
  readonly targets: TargetFrame[] = [];
  readonly closedWith: Promise<{ code: number; reason: string }>;
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    readonly nodeId: string,
    readonly credential: string,
    readonly ws: WebSocket,
  ) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string };
      if (frame.type === 'target') this.targets.push(frame as TargetFrame);
    });
    this.closedWith = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.heartbeat = setInterval(() => this.send({ type: 'heartbeat' }), 100);
  }

  /**
   * Joins as a new node, or connects again as `again` (the same device, maybe another agent
   * version), and says hello with `hello` over the defaults; resolves once welcomed.
   */
  static async connect(fleet: SimFleet, name: string, hello: Partial<HelloFrame> = {}, again?: RawDevice): Promise<RawDevice> {
    const joined = again ? { nodeId: again.nodeId, credential: again.credential } : await join(fleet, name);
    const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${joined.credential}` } });
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const welcomed = new Promise<void>((resolve) => ws.once('message', () => resolve()));
    const device = new RawDevice(joined.nodeId, joined.credential, ws);
    ws.send(JSON.stringify(helloFrame(name, hello)));
    await welcomed;
    return device;
  }

  send(frame: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  get lastTarget(): TargetFrame | undefined {
    return this.targets.at(-1);
  }

  /**
   * Reports every replica of its newest target running, as an agent would once they start, with
   * `health` for the replicas of `health.service`, and acks the target.
   */
  run(health?: { service: string; health: ReplicaReport['health'] }): void {
    const target = this.lastTarget;
    if (!target || target.replicas.length === 0) return;
    const replicas: ReplicaReport[] = target.replicas.map((r) => ({
      replicaId: r.replicaId,
      service: r.service,
      state: 'running',
      specHash: r.specHash,
      containerId: `c-${r.replicaId}`,
      error: null,
      restarts: 0,
      ...(health && r.service === health.service ? { health: health.health } : {}),
    }));
    this.send({ type: 'status', replicas });
    this.send({ type: 'ack', generation: target.generation, pending: 0 });
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.ws.close();
  }
}

async function join(fleet: SimFleet, name: string): Promise<{ nodeId: string; credential: string }> {
  const { token } = await fleet.hub.nodes.createJoinToken(60);
  return (await fleet.hub.nodes.join(token, name, {}))!;
}

/**
 * Devices of one test file, each speaking a given protocol version, all closed by closeAll (call
 * it after each test). `fleet`: the test's current fleet.
 */
export function rawDevices(fleet: () => SimFleet) {
  const open: RawDevice[] = [];
  return {
    /** A device of `protocolVersion`, joining anew or as `again`. */
    async connect(name: string, protocolVersion: number, again?: RawDevice, appliedGeneration = 0): Promise<RawDevice> {
      const device = await RawDevice.connect(fleet(), name, { protocolVersion, appliedGeneration }, again);
      open.push(device);
      return device;
    },
    closeAll(): void {
      for (const d of open.splice(0)) d.close();
    },
  };
}
