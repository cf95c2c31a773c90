/**
 * A TCP proxy for tests that keeps every byte the server sends back (the hub's frames to one
 * agent: WebSocket frames from a server are not masked, and agents ask for no compression, so a
 * frame's text is in them as sent). Loopback only; what it keeps is capped (MAX_RECORDED_BYTES),
 * beyond which it drops the connection rather than grow.
 */
import net from 'node:net';

export const MAX_RECORDED_BYTES = 64 * 1024 * 1024;

export class RecordingProxy {
  private readonly chunks: Buffer[] = [];
  private recordedBytes = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** A proxy in front of `targetUrl` (http://127.0.0.1:port). */
  static async start(targetUrl: string): Promise<RecordingProxy> {
    const url = new URL(targetUrl);
    if (!url.hostname.startsWith('127.')) throw new Error(`loopback targets only, not ${url.hostname}`);
    const proxy = new RecordingProxy(net.createServer(), { host: url.hostname, port: Number(url.port) });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Everything the server sent so far, over every connection, in order. */
  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Whether the server ever sent `text` (as UTF-8). */
  sawText(text: string): boolean {
    return this.received().includes(Buffer.from(text, 'utf8'));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      this.recordedBytes += chunk.length;
      if (this.recordedBytes > MAX_RECORDED_BYTES) return drop();
      this.chunks.push(chunk);
      client.write(chunk);
    });
  }
}
