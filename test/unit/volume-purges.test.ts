/**
 * The agent's purge of a deleted service's volumes: only once none of its containers is left and
 * the target names none of its replicas; once done, not asked again; a volume in use, or an engine
 * error, is tried again by a later pass.
 */
import { describe, expect, it } from 'vitest';
import { VolumePurges } from '../../agent/reconciler/volume-purges.js';
import type { ObservedContainer, VolumeRemoval } from '../../agent/runtime/container-runtime.js';
import type { AssignedReplica } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

const container = (service: string): ObservedContainer => ({
  id: `${service}-c`,
  name: `${service}-c`,
  replicaId: `${service}.1`,
  service,
  specHash: 'h',
  state: 'exited',
  exitCode: 0,
  restartCount: 0,
  error: null,
});
const replica = (service: string): AssignedReplica => ({ replicaId: `${service}.1`, service, specHash: 'h', container: containerSpec('app:1') });

function purges(answers: Array<VolumeRemoval | Error>) {
  const calls: string[] = [];
  const warnings: string[] = [];
  const p = new VolumePurges({
    nodeId: 'n1',
    runtime: {
      removeServiceVolumes: async (_nodeId, service) => {
        calls.push(service);
        const answer = answers.shift() ?? { removed: [], inUse: [] };
        if (answer instanceof Error) throw answer;
        return answer;
      },
    },
    logger: { info: () => undefined, warn: (_obj: object, msg?: string) => void warnings.push(msg ?? '') },
  });
  return { p, calls, warnings };
}

const signal = new AbortController().signal;

describe('VolumePurges', () => {
  it('waits while a container of the service is left or the target names one of its replicas', async () => {
    const { p, calls } = purges([]);
    await p.run(['db'], [], [container('db')], signal);
    await p.run(['db'], [replica('db')], [], signal);
    expect(calls).toEqual([]);
    await p.run(['db'], [replica('web')], [container('web')], signal);
    expect(calls).toEqual(['db']);
  });

  it('asks the engine once when it is done, again while a volume is in use or the engine fails', async () => {
    const { p, calls, warnings } = purges([{ removed: [], inUse: ['tether-n1-db-data'] }, new Error('engine away'), { removed: ['tether-n1-db-data'], inUse: [] }]);
    for (let pass = 0; pass < 5; pass++) await p.run(['db'], [], [], signal);
    expect(calls).toEqual(['db', 'db', 'db']);
    expect(warnings).toHaveLength(2);
  });

  it('forgets what it did once the target no longer lists it, so a later purge of the name runs again', async () => {
    const { p, calls } = purges([]);
    await p.run(['db'], [], [], signal);
    await p.run([], [], [], signal);
    await p.run(['db'], [], [], signal);
    expect(calls).toEqual(['db', 'db']);
  });
});
