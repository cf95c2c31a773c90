/**
 * A proxy in front of the Docker engine's socket that a test can fault: `refusing` drops new
 * connections, `cutAll()` drops the open ones, `frozen` swallows bytes both ways while keeping the
 * connections open (an engine that accepts and never answers).
 */
import net from 'node:net';
import { DOCKER_SOCKET } from './docker.js';

export class EngineProxy {
  refusing = false;
  frozen = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(readonly socketPath: string) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(socketPath: string): Promise<EngineProxy> {
    const proxy = new EngineProxy(socketPath);
    await new Promise<void>((resolve) => proxy.server.listen(socketPath, resolve));
    return proxy;
  }

  cutAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(DOCKER_SOCKET);
    this.sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => void (this.frozen || upstream.write(chunk)));
    upstream.on('data', (chunk: Buffer) => void (this.frozen || client.write(chunk)));
  }
}
