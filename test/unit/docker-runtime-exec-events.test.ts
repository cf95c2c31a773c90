/**
 * The events of exec health checks on a scripted engine (a fake docker-modem): each try of an
 * exec check is an exec in the container, three events that must not each cost a reconcile pass
 * and a fresh inspect; the health_status event that follows a change must.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { LABELS, type RuntimeEvent } from '../../agent/runtime/container-runtime.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import type { DialOptions, EngineModem } from '../../agent/runtime/docker/engine-client.js';
import { healthCheckLabel } from '../../agent/runtime/health-check-label.js';
import { execCheck } from '../helpers/health-checks.js';

const NODE = 'node-x';
const ID = 'e'.repeat(64);
const CHECK = execCheck();

class ScriptedEngine implements EngineModem {
  health = { Status: 'starting', Log: [] as Array<{ ExitCode: number; Output: string }> };
  inspectCalls = 0;
  readonly events = new PassThrough();

  dial(options: DialOptions, callback?: Parameters<EngineModem['dial']>[1]): void {
    const answer = (result: unknown) => queueMicrotask(() => callback?.(null, result as object));
    // dockerode ends a path that may take a query with '?'; the modem drops it when there is none.
    const path = (options.path ?? '').replace(/\?$/, '');
    if (path.startsWith('/containers/json')) {
      const labels = {
        [LABELS.managed]: 'true',
        [LABELS.nodeId]: NODE,
        [LABELS.service]: 'web',
        [LABELS.replicaId]: 'r1',
        [LABELS.specHash]: 'abcdef0123456789',
        [LABELS.healthCheck]: healthCheckLabel(CHECK),
      };
      return answer([{ Id: ID, Names: ['/tether-node-x-r1'], State: 'running', Labels: labels }]);
    }
    if (path === `/containers/${ID}/json`) {
      this.inspectCalls++;
      return answer({ RestartCount: 0, State: { Status: 'running', ExitCode: 0, Error: '', Health: this.health }, NetworkSettings: { IPAddress: '172.17.0.9' } });
    }
    if (path.startsWith('/events')) return answer(this.events);
    throw new Error(`scripted engine: unexpected call ${options.method} ${path}`);
  }

  emit(action: string): void {
    this.events.write(`${JSON.stringify({ Type: 'container', Action: action, Actor: { ID } })}\n`);
  }
}

describe('DockerRuntime and exec health checks', () => {
  it('drops the exec events of each try, and reads the new health after a health_status event', async () => {
    const engine = new ScriptedEngine();
    const runtime = new DockerRuntime({ modem: engine });
    expect((await runtime.listContainers(NODE))[0]).toMatchObject({
      healthCheck: CHECK,
      engineHealth: { status: 'starting', output: null },
      address: '172.17.0.9',
    });
    const events: RuntimeEvent[] = [];
    const unsubscribe = runtime.watchEvents(NODE, (e) => events.push(e));
    try {
      await vi.waitFor(() => expect(events).toContainEqual({ containerId: null, action: 'resync' }));
      events.length = 0;
      engine.emit('exec_create: sh -c exit 3');
      engine.emit('exec_start: sh -c exit 3');
      engine.emit('exec_die');
      engine.health = { Status: 'unhealthy', Log: [{ ExitCode: 3, Output: 'no good\n' }] };
      engine.emit('health_status: unhealthy');
      await vi.waitFor(() => expect(events).toContainEqual({ containerId: ID, action: 'health_status' }));
      expect(events).toEqual([{ containerId: ID, action: 'health_status' }]);
      expect((await runtime.listContainers(NODE))[0]?.engineHealth).toEqual({ status: 'unhealthy', output: 'no good' });
    } finally {
      unsubscribe();
    }
  });
});
