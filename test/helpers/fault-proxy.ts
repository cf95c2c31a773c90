/**
 * A fault-injecting TCP proxy for tests: put it between one agent and the hub (give the agent
 * `proxy.url` as --hub) and cut, black-hole or slow down the link on demand.
 *
 * Loopback only: it listens on 127.x.x.x and connects only to the given target, which must be a
 * loopback address too. Memory is bounded: bytes held back by delay() are capped per direction
 * (MAX_QUEUED_BYTES); a connection that goes over is destroyed.
 */
import net from 'node:net';

export type FaultMode = 'pass' | 'blackhole';

/** Bytes that delay() may hold back for one direction of one connection before it is dropped. */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

type State = FaultMode | 'cut';

interface Held {
  /** null stands for the FIN (the source ended its side), delivered in order after the data. */
  data: Buffer | null;
  due: number;
}

function isLoopbackIPv4(host: string): boolean {
  return net.isIPv4(host) && host.startsWith('127.');
}

function isLoopbackTarget(host: string): boolean {
  return isLoopbackIPv4(host) || host === 'localhost' || host === '::1';
}

/** What a connection needs from its proxy (kept off FaultProxy's public surface). */
interface LinkHost {
  delayMs(): number;
  forget(link: Link): void;
}

/** One direction of a proxied connection: bytes read from `src` are written to `dst`. */
class Pipe {
  private held: Held[] = [];
  private heldBytes = 0;
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;

  constructor(
    private readonly link: Link,
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
  ) {
    src.on('data', (chunk: Buffer) => this.push(chunk));
    src.on('end', () => this.push(null));
  }

  /** True while the source's FIN is queued but not yet delivered. */
  get finPending(): boolean {
    return this.held.some((h) => h.data === null);
  }

  private push(data: Buffer | null): void {
    if (this.link.closed || this.link.blackholed) return; // dropped on the floor, FIN included
    const delayMs = this.link.host.delayMs();
    if (delayMs === 0 && this.held.length === 0) {
      this.deliver(data);
      return;
    }
    // Never earlier than what is already queued, so order holds even if delay() shrinks.
    const due = Math.max(Date.now() + delayMs, this.lastDue);
    this.lastDue = due;
    this.held.push({ data, due });
    if (data) {
      this.heldBytes += data.length;
      if (this.heldBytes > MAX_QUEUED_BYTES) {
        this.link.destroy();
        return;
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.held.length === 0) return;
    const head = this.held[0]!;
    this.timer = setTimeout(() => this.flush(), Math.max(1, head.due - Date.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.held.length > 0 && this.held[0]!.due <= now) {
      const { data } = this.held.shift()!;
      if (data) this.heldBytes -= data.length;
      if (this.link.closed || this.link.blackholed) {
        this.clear();
        return;
      }
      this.deliver(data);
    }
    this.schedule();
  }

  private deliver(data: Buffer | null): void {
    const dst = this.dst;
    if (dst.destroyed || dst.writableEnded) return;
    if (data === null) {
      dst.end();
      return;
    }
    if (!dst.write(data) && !this.waitingDrain) {
      // Back-pressure: stop reading until the destination catches up.
      this.waitingDrain = true;
      this.src.pause();
      dst.once('drain', () => {
        this.waitingDrain = false;
        if (!this.src.destroyed) this.src.resume();
      });
    }
  }

  /** Forget everything queued (bytes in flight are lost) and stop the timer. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.held = [];
    this.heldBytes = 0;
  }
}

/** A client connection and, unless it was accepted while black-holed, its upstream connection. */
class Link {
  closed = false;
  blackholed: boolean;
  private readonly pipes: Pipe[] = [];

  constructor(
    readonly host: LinkHost,
    private readonly client: net.Socket,
    private readonly upstream: net.Socket | null,
  ) {
    this.blackholed = upstream === null;
    for (const sock of this.sockets()) {
      sock.setNoDelay(true);
      // ECONNRESET, EPIPE, ECONNREFUSED...: the 'close' that follows does the work.
      sock.on('error', () => {});
    }
    if (upstream) {
      this.pipes.push(new Pipe(this, client, upstream), new Pipe(this, upstream, client));
      client.on('close', (hadError) => this.onClose(client, this.pipes[0]!, hadError));
      upstream.on('close', (hadError) => this.onClose(upstream, this.pipes[1]!, hadError));
    } else {
      // Nothing gets through; the client's bytes are read and dropped.
      client.on('data', () => {});
      client.on('close', () => this.destroy());
    }
  }

  private sockets(): net.Socket[] {
    return this.upstream ? [this.client, this.upstream] : [this.client];
  }

  /** `sock` closed; `out` is the pipe that carries its bytes to the other side. */
  private onClose(sock: net.Socket, out: Pipe, hadError: boolean): void {
    if (this.closed) return;
    if (this.sockets().every((s) => s.destroyed)) {
      this.destroy();
      return;
    }
    // A dead link carries no FIN or RST: the other side stays open until restore() or close().
    if (this.blackholed) return;
    // A clean close means `sock` sent its FIN, which is delivered (then the other side closes
    // by itself once done) or still queued behind delayed bytes. Anything else: close both now.
    if (hadError || !(sock.readableEnded && (out.finPending || this.other(sock).writableEnded))) this.destroy();
  }

  private other(sock: net.Socket): net.Socket {
    return sock === this.client ? this.upstream! : this.client;
  }

  blackhole(): void {
    this.blackholed = true;
    for (const p of this.pipes) p.clear();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pipes) p.clear();
    for (const s of this.sockets()) s.destroy();
    this.host.forget(this);
  }
}

export class FaultProxy {
  readonly url: string;
  readonly port: number;
  private delayMs = 0;
  private state: State = 'pass';
  private readonly links = new Set<Link>();
  private readonly host: LinkHost = {
    delayMs: () => this.delayMs,
    forget: (link) => this.links.delete(link),
  };
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
    host: string,
  ) {
    this.port = (server.address() as net.AddressInfo).port;
    this.url = `http://${host}:${this.port}`;
    server.on('connection', (sock) => this.accept(sock));
    server.on('error', () => {}); // e.g. EMFILE on accept; never an unhandled exception
  }

  static async start(opts: { target: { host: string; port: number }; listenHost?: string }): Promise<FaultProxy> {
    const host = opts.listenHost ?? '127.0.0.1';
    if (!isLoopbackIPv4(host)) throw new Error(`FaultProxy listens on loopback only (127.x.x.x), got "${host}"`);
    const { target } = opts;
    if (!isLoopbackTarget(target.host)) throw new Error(`FaultProxy connects to loopback only, got "${target.host}"`);
    if (!Number.isInteger(target.port) || target.port <= 0 || target.port > 65535) {
      throw new Error(`FaultProxy target port must be 1-65535, got ${target.port}`);
    }
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FaultProxy(server, { host: target.host, port: target.port }, host);
  }

  /** Currently open proxied connections (including ones held open by blackhole()). */
  get connections(): number {
    return this.links.size;
  }

  /** Destroy every open connection now and refuse new ones (accepted, then destroyed) until restore(). */
  cut(): void {
    this.state = 'cut';
    for (const link of [...this.links]) link.destroy();
  }

  /**
   * A dead link with no FIN or RST, like a yanked cable: connections stay open but all bytes are
   * dropped both ways; new connections are accepted but never reach the target. Until restore().
   */
  blackhole(): void {
    this.state = 'blackhole';
    for (const link of this.links) link.blackhole();
  }

  /** Add `ms` of latency to every chunk in both directions (order kept). delay(0) turns it off. */
  delay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`delay must be a finite number >= 0, got ${ms}`);
    this.delayMs = Math.round(ms);
  }

  /**
   * Back to normal: pass traffic with no added latency. Connections that were black-holed are
   * destroyed, so the peers must reconnect as after a real outage.
   */
  restore(): void {
    this.state = 'pass';
    this.delayMs = 0;
    for (const link of [...this.links]) if (link.blackholed) link.destroy();
  }

  /** Stop listening and destroy everything; no sockets or timers are left behind. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.state = 'cut';
      this.server.close(() => resolve());
      for (const link of [...this.links]) link.destroy();
    });
    return this.closing;
  }

  private accept(client: net.Socket): void {
    if (this.state === 'cut' || this.closing) {
      client.on('error', () => {});
      client.destroy();
      return;
    }
    if (this.state === 'blackhole') {
      this.links.add(new Link(this.host, client, null));
      return;
    }
    const upstream = net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    this.links.add(new Link(this.host, client, upstream));
  }
}
