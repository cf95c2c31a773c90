/**
 * DockerRuntime's listing against a scripted engine (a fake docker-modem): what the real engine
 * does only now and then, exactly when a test wants it. A listing that lags a container's death,
 * an inspect that fails between two that work.
 */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReconcileLoop } from '../../agent/reconciler/reconcile-loop.js';
import { LABELS, type RuntimeEvent } from '../../agent/runtime/container-runtime.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import type { DialOptions, EngineModem } from '../../agent/runtime/docker/engine-client.js';
import type { ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

const NODE = 'node-f';
const ID = 'c'.repeat(64);
const SPEC_HASH = 'abcdef0123456789';

type Inspect = { Status: string; ExitCode?: number; RestartCount: number } | 'fail';

/** An engine with one managed container: its listed state, and the answers to its inspects, in turn. */
class ScriptedEngine implements EngineModem {
  listedState = 'running';
  readonly inspects: Inspect[] = [];
  inspectCalls = 0;
  starts = 0;
  readonly events = new PassThrough();

  dial(options: DialOptions, callback?: Parameters<EngineModem['dial']>[1]): void {
    // docker-modem rejects with a plain object carrying statusCode and json, not an Error.
    const answer = (err: object | null, result?: unknown) => queueMicrotask(() => callback?.(err as Error | null, result as object));
    // dockerode ends a path that may take a query with '?'; the modem drops it when there is none.
    const path = (options.path ?? '').replace(/\?$/, '');
    if (path.startsWith('/containers/json')) {
      const labels = { [LABELS.managed]: 'true', [LABELS.nodeId]: NODE, [LABELS.service]: 'web', [LABELS.replicaId]: 'r1', [LABELS.specHash]: SPEC_HASH };
      return answer(null, [{ Id: ID, Names: ['/tether-node-f-r1'], State: this.listedState, Labels: labels }]);
    }
    if (path === `/containers/${ID}/json`) {
      this.inspectCalls++;
      const next = this.inspects.shift();
      if (next === undefined) throw new Error('scripted engine: no inspect answer left');
      if (next === 'fail') return answer({ statusCode: 500, json: { message: 'context deadline exceeded' }, message: '(HTTP code 500) server error' });
      const { Status, ExitCode = 0, RestartCount } = next;
      return answer(null, { RestartCount, State: { Status, ExitCode, Error: '' } });
    }
    if (path === `/containers/${ID}/start` && options.method === 'POST') {
      this.starts++;
      // A start through the API: the engine runs it and resets its RestartCount to 0.
      this.listedState = 'running';
      return answer(null, '');
    }
    if (path.startsWith('/events')) return answer(null, this.events);
    throw new Error(`scripted engine: unexpected call ${options.method} ${path}`);
  }

  /** One event line, as the engine streams it. */
  emit(action: string): void {
    this.events.write(`${JSON.stringify({ Type: 'container', Action: action, Actor: { ID: ID }, time: Math.floor(Date.now() / 1000), timeNano: Date.now() * 1e6 })}\n`);
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('DockerRuntime listing on a scripted engine', () => {
  it('a listing made after a die event shows the container exited, though the engine still lists it running', async () => {
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine });
    engine.inspects.push({ Status: 'running', RestartCount: 0 });
    expect((await runtime.listContainers(NODE))[0]).toMatchObject({ state: 'running', error: null });

    // Within the running-inspect lifetime: without an event the cached inspect is trusted.
    expect((await runtime.listContainers(NODE))[0]?.state).toBe('running');
    expect(engine.inspectCalls).toBe(1);

    const events: RuntimeEvent[] = [];
    const unsubscribe = runtime.watchEvents(NODE, (e) => events.push(e));
    try {
      await vi.waitFor(() => {
        engine.emit('die');
        expect(events).toContainEqual({ containerId: ID, action: 'die' });
      });
      engine.inspects.push({ Status: 'exited', ExitCode: 137, RestartCount: 0 });
      expect((await runtime.listContainers(NODE))[0]).toMatchObject({ state: 'exited', exitCode: 137, error: null });
      expect(engine.inspectCalls).toBe(2);
    } finally {
      unsubscribe();
    }
  });

  it('an inspect that fails keeps the last good one: the restart count stays known, the state unconfirmed', async () => {
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine });
    // 'restarting' is inspected on every listing.
    engine.listedState = 'restarting';
    engine.inspects.push({ Status: 'restarting', ExitCode: 1, RestartCount: 50 }, 'fail', 'fail', { Status: 'restarting', ExitCode: 1, RestartCount: 51 });
    const counts: Array<number | null> = [];
    const errors: Array<string | null> = [];
    for (let i = 0; i < 4; i++) {
      const [c] = await runtime.listContainers(NODE);
      counts.push(c!.restartCount);
      errors.push(c!.error);
    }
    expect(counts).toEqual([50, 50, 50, 51]);
    expect(errors.map((e) => e !== null)).toEqual([false, true, true, false]);
    expect(errors[1]).toMatch(/^inspect container c{12}: context deadline exceeded/);
  });

  it('a container never inspected whose inspect fails has an unknown restart count, not 0', async () => {
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine });
    engine.inspects.push('fail');
    expect((await runtime.listContainers(NODE))[0]).toMatchObject({ state: 'running', restartCount: null });
  });

  it('after a start by the agent, a failed inspect gives an unknown restart count, not the one from before the start', async () => {
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine });
    engine.listedState = 'exited';
    engine.inspects.push({ Status: 'exited', ExitCode: 1, RestartCount: 5 }, 'fail');
    expect((await runtime.listContainers(NODE))[0]).toMatchObject({ state: 'exited', restartCount: 5 });
    expect(await runtime.startContainer(ID)).toBe('started');
    expect((await runtime.listContainers(NODE))[0]).toMatchObject({ state: 'running', restartCount: null });
  });

  it('a replica the agent starts again after 5 engine restarts counts 6, though the next inspect fails', async () => {
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine });
    const loop = new ReconcileLoop({
      nodeId: NODE,
      runtime,
      publishAddress: null,
      logger: { info() {}, warn() {}, error() {} },
      onReport: () => {},
      onApplied: () => {},
      resyncIntervalMs: 3_600_000,
    });
    engine.inspects.push({ Status: 'running', RestartCount: 5 });
    loop.setTarget(1, [{ replicaId: 'r1', service: 'web', specHash: SPEC_HASH, container: containerSpec('httpd:1') }]);
    await loop.start();
    try {
      expect(loop.snapshot()).toMatchObject([{ state: 'running', restarts: 5 }]);
      // It exits and the policy leaves it so: the pass starts it, and the listing after fails its inspect.
      engine.listedState = 'exited';
      engine.inspects.push({ Status: 'exited', ExitCode: 1, RestartCount: 5 }, 'fail', { Status: 'running', RestartCount: 0 });
      await loop.runOnce();
      expect(engine.starts).toBe(1);
      expect(loop.snapshot()).toMatchObject([{ restarts: 6 }]);
      await loop.runOnce();
      expect(loop.snapshot()).toMatchObject([{ state: 'running', restarts: 6 }]);
    } finally {
      await loop.stop();
    }
  });

  it('a wall clock stepping back a year does not keep a running container’s inspect fresh', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let clockMs = 0;
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine, monotonicNowMs: () => clockMs });
    engine.inspects.push({ Status: 'running', RestartCount: 0 }, { Status: 'running', RestartCount: 3 });
    expect((await runtime.listContainers(NODE))[0]).toMatchObject({ restartCount: 0 });
    // The first time sync of a device without a real-time clock corrects one that ran ahead.
    vi.setSystemTime(Date.now() - 365 * 86_400_000);
    clockMs += 31_000;
    expect((await runtime.listContainers(NODE))[0]).toMatchObject({ restartCount: 3 });
    expect(engine.inspectCalls).toBe(2);
  });

  it('through a flapping inspect the agent reports no inflated restart count, and never running unconfirmed', async () => {
    let clockMs = 0;
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine, monotonicNowMs: () => clockMs });
    const reports: ReplicaReport[] = [];
    const loop = new ReconcileLoop({
      nodeId: NODE,
      runtime,
      publishAddress: null,
      logger: { info() {}, warn() {}, error() {} },
      onReport: (changed) => reports.push(...changed),
      onApplied: () => {},
      resyncIntervalMs: 3_600_000,
    });
    engine.inspects.push({ Status: 'running', RestartCount: 50 }, 'fail', 'fail', { Status: 'running', RestartCount: 50 }, 'fail', { Status: 'running', RestartCount: 50 });
    loop.setTarget(1, [{ replicaId: 'r1', service: 'web', specHash: SPEC_HASH, container: containerSpec('httpd:1') }]);
    await loop.start();
    try {
      expect(loop.snapshot()).toMatchObject([{ state: 'running', restarts: 50 }]);
      const seen: Array<[string, number]> = [];
      for (let i = 0; i < 5; i++) {
        // Past the lifetime of a running container's inspect: every pass inspects it again.
        clockMs += 31_000;
        await loop.runOnce();
        const [r] = loop.snapshot();
        seen.push([r!.state, r!.restarts]);
      }
      expect(engine.inspectCalls).toBe(6);
      expect(seen).toEqual([
        ['failed', 50],
        ['failed', 50],
        ['running', 50],
        ['failed', 50],
        ['running', 50],
      ]);
      expect(reports.filter((r) => r.state === 'running' && r.error !== null)).toEqual([]);
    } finally {
      await loop.stop();
    }
  });
});
