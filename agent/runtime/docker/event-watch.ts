/**
 * Following the engine's event stream for a node's containers, reconnecting with backoff when it
 * breaks, and when it goes quiet and the engine no longer answers a ping.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { Backoff } from '../../../shared/backoff.js';
import { LABELS, type RuntimeEvent } from '../container-runtime.js';
import type { ContainerListing } from './container-listing.js';
import type { EngineClient } from './engine-client.js';
import { DockerEngineError, engineMessage, isEngineUnreachable } from './engine-errors.js';
import { JsonLineReader } from './json-lines.js';

/** Reconnect delays of the event stream: quick after a blip, at most this slow while the engine is down. */
const EVENTS_BACKOFF = { baseMs: 250, capMs: 10_000 } as const;
/** A stream that stayed up this long was healthy: its end starts the backoff over. */
const EVENTS_HEALTHY_AFTER_MS = 30_000;

export class EventWatch {
  /** Event streams waiting out a reconnect delay: the engine's return reconnects them at once. */
  private readonly waiting = new Set<() => void>();

  constructor(
    private readonly engine: EngineClient,
    /** Told of each event, so that its cached inspects are not trusted past it. */
    private readonly listing: ContainerListing,
  ) {}

  /** The engine is back (a ping answered after one failed): streams waiting to reconnect need not wait out their backoff. */
  reconnectWaiting(): void {
    for (const reconnect of [...this.waiting]) reconnect();
  }

  /**
   * Every (re)subscription starts with a 'resync' event: what happened while there was no stream
   * is read by a full listing, not replayed by time, since a `since` would come from a clock (the
   * device's, or an engine's that steps back when it first syncs) and a wrong one silently drops
   * events.
   */
  watch(nodeId: string, onEvent: (event: RuntimeEvent) => void): () => void {
    const { engine, listing } = this;
    const backoff = new Backoff(EVENTS_BACKOFF);
    let stopped = false;
    let timer: NodeJS.Timeout | null = null;
    let controller: AbortController | null = null;
    let stream: Readable | null = null;

    const reconnectNow = (): void => {
      this.waiting.delete(reconnectNow);
      if (timer !== null) clearTimeout(timer);
      timer = null;
      void connect();
    };
    const scheduleReconnect = (): void => {
      if (stopped || timer !== null) return;
      this.waiting.add(reconnectNow);
      timer = setTimeout(reconnectNow, backoff.nextDelayMs());
    };

    const deliver = (event: RuntimeEvent): void => {
      try {
        onEvent(event);
      } catch (err) {
        engine.logger?.warn({ err, nodeId }, 'container event handler threw');
      }
    };

    const handle = (value: unknown): void => {
      const e = value as { Type?: unknown; Action?: unknown; status?: unknown; id?: unknown; Actor?: { ID?: unknown } };
      if (e.Type !== undefined && e.Type !== 'container') return;
      const containerId = typeof e.Actor?.ID === 'string' ? e.Actor.ID : typeof e.id === 'string' ? e.id : null;
      const rawAction = typeof e.Action === 'string' ? e.Action : typeof e.status === 'string' ? e.status : null;
      if (containerId === null || rawAction === null) return;
      // "exec_start: sh -c ..." and "health_status: healthy" carry details after the colon; the
      // action alone is the lifecycle fact (and a command line may hold secrets).
      const action = rawAction.split(':')[0]!.trim();
      backoff.reset(); // the stream delivers: the next break starts from a short delay again
      // Each try of an exec health check is an exec in the container: three events that change
      // nothing the agent reads (a health_status event follows when the health changes).
      if (action.startsWith('exec_')) return;
      listing.noteEvent(nodeId, containerId);
      deliver({ containerId, action });
    };

    const connect = async (): Promise<void> => {
      if (stopped) return;
      const myController = new AbortController();
      controller = myController;
      let s: IncomingMessage;
      try {
        s = await engine.call(
          'docker events',
          engine.deadlines.queryMs,
          (abortSignal) => engine.signalled.getEvents({ filters: { type: ['container'], label: [`${LABELS.nodeId}=${nodeId}`] }, abortSignal }),
          myController.signal,
        );
      } catch (err) {
        if (stopped) return;
        engine.logger?.warn({ err: engineMessage(err), nodeId }, 'docker event stream: connect failed, retrying');
        scheduleReconnect();
        return;
      }
      if (stopped) {
        s.destroy();
        return;
      }
      stream = s;
      const connectedAtMs = engine.nowMs();
      const reader = new JsonLineReader();
      let ended = false;
      let idleTimer: NodeJS.Timeout | null = null;
      const onEnd = (err?: unknown): void => {
        if (ended) return;
        ended = true;
        if (idleTimer !== null) clearTimeout(idleTimer);
        myController.abort();
        s.destroy();
        if (stream === s) stream = null;
        if (stopped) return;
        if (engine.nowMs() - connectedAtMs >= EVENTS_HEALTHY_AFTER_MS) backoff.reset();
        engine.logger?.warn({ err: err ? engineMessage(err) : undefined, nodeId }, 'docker event stream ended, reconnecting');
        // A connection lost or refused is the first sign of an engine stopped, well before the
        // reconnect delay runs out: worth a ping. A stream merely ended is not: an engine that
        // ends its streams while it answers would be pinged in a loop (a stopped one fails the
        // reconnect, which tells).
        if (err !== undefined && isEngineUnreachable(err)) {
          engine.reportUnreachable(new DockerEngineError(`docker event stream ended: ${engineMessage(err)}`, null, { cause: err }));
        }
        scheduleReconnect();
      };
      // A quiet node has a quiet stream; a hung engine has one too. A ping tells them apart.
      const armIdle = (): void => {
        if (idleTimer !== null) clearTimeout(idleTimer);
        idleTimer = setTimeout(() => {
          idleTimer = null;
          engine.call('docker ping', engine.deadlines.pingMs, (abortSignal) => engine.signalled.ping({ abortSignal })).then(
            () => {
              if (!ended && !stopped && idleTimer === null) armIdle();
            },
            // Unless the stream spoke meanwhile: the engine is alive, however slow its ping.
            (err: unknown) => {
              if (idleTimer === null) onEnd(err);
            },
          );
        }, engine.deadlines.eventsIdleMs);
      };
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        if (stopped || ended) return;
        armIdle();
        reader.push(chunk, handle, (line) => engine.logger?.warn({ nodeId, line: line.slice(0, 200) }, 'unparseable docker event'));
      });
      s.on('error', (err) => onEnd(err));
      s.on('end', () => onEnd());
      s.on('close', () => onEnd());
      armIdle();
      // Events from before the stream was up are gone: cached inspects are checked again, and the
      // watcher re-reads everything.
      listing.noteEventsMissed(nodeId);
      deliver({ containerId: null, action: 'resync' });
    };

    void connect();

    return () => {
      if (stopped) return;
      stopped = true;
      this.waiting.delete(reconnectNow);
      if (timer !== null) clearTimeout(timer);
      timer = null;
      controller?.abort();
      stream?.destroy();
      stream = null;
    };
  }
}
