import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObservedContainer } from '../../agent/runtime/container-runtime.js';
import { containerInputsFor } from '../../agent/container-inputs.js';
import { ValueDelivery } from '../../agent/values/value-delivery.js';
import { ValueFileStore } from '../../agent/values/value-file-store.js';
import type { ContainerSpec } from '../../shared/container-spec.js';
import type { AssignedReplica, TargetFrame, TargetValue } from '../../shared/protocol.js';
import { silentLogger } from '../helpers/silent-logger.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function replica(id: string, secretVersion: number | null, over: Partial<ContainerSpec> = {}): AssignedReplica {
  return {
    replicaId: id,
    service: 'web',
    specHash: `h${secretVersion}`,
    container: {
      image: 'busybox:1',
      command: null,
      env: { PLAIN: '1' },
      ports: [],
      resources: { cpus: null, memoryMB: null },
      labels: {},
      registryAuth: null,
      ...(secretVersion === null
        ? {}
        : {
            files: [
              { source: 'secret', name: 'db', version: secretVersion, target: '/run/secrets/db', mode: 0o400, uid: 100, gid: 101 },
              { source: 'config', name: 'site', version: 1, target: '/etc/site.conf', mode: 0o444, uid: 0, gid: 0 },
            ],
            envFrom: { DB: { source: 'secret', name: 'db', version: secretVersion } },
          }),
      ...over,
    },
  };
}
const secret = (version: number): TargetValue => ({ source: 'secret', name: 'db', version, data: b64(`pw-${version}`) });
const site: TargetValue = { source: 'config', name: 'site', version: 1, data: b64('site one') };
const targetOf = (generation: number, replicas: AssignedReplica[], values: TargetValue[]): TargetFrame =>
  values.length > 0 ? { type: 'target', generation, replicas, values } : { type: 'target', generation, replicas };

let dir: string;
let listed: ObservedContainer[];
let delivery: ValueDelivery;
let secrets: ValueFileStore;
let configs: ValueFileStore;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-value-delivery-'));
  listed = [];
  secrets = new ValueFileStore({ source: 'secret', dir: path.join(dir, 'secrets'), tmpfsSizeBytes: 1024 * 1024 });
  configs = new ValueFileStore({ source: 'config', dir: path.join(dir, 'configs') });
  delivery = new ValueDelivery({
    nodeId: 'node-1',
    runtime: { listContainers: async () => listed },
    stores: { secrets, configs },
    logger: silentLogger,
    sweepIntervalMs: 20,
  });
  await delivery.prepare();
});
afterEach(async () => {
  await delivery.stop();
  // Mounted at the first secret written: not by a test that wrote none.
  const secretsDir = path.join(dir, 'secrets');
  if ((await readFile('/proc/self/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === secretsDir)) execFileSync('umount', [secretsDir]);
  await rm(dir, { recursive: true, force: true });
});

const container = (r: AssignedReplica, bindSources: string[]): ObservedContainer => ({
  id: `c-${r.replicaId}`,
  name: r.replicaId,
  replicaId: r.replicaId,
  service: r.service,
  specHash: r.specHash,
  state: 'running',
  exitCode: null,
  restartCount: 0,
  error: null,
  bindSources,
});

describe('values delivered to containers', () => {
  it('mounts each file read-only from the store, with its mode and owner, and sets env from the values', async () => {
    const r = replica('web-1', 3);
    delivery.setTarget(targetOf(1, [r], [site, secret(3)]));
    const inputs = await containerInputsFor('node-1', delivery)(r);
    expect(inputs.env).toEqual({ PLAIN: '1', DB: 'pw-3' });
    const binds = inputs.mounts.filter((m) => m.type === 'bind');
    expect(binds.map((m) => m.target)).toEqual(['/run/secrets/db', '/etc/site.conf']);
    for (const m of binds) expect(m.type === 'bind' && m.readOnly).toBe(true);
    const secretFile = binds[0]!.type === 'bind' ? binds[0]!.source : '';
    expect(path.dirname(secretFile)).toBe(secrets.dir);
    expect(await readFile(secretFile, 'utf8')).toBe('pw-3');
    const st = await stat(secretFile);
    expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o400, 100, 101]);
  });

  it('fails a replica whose version is not on the node, naming it', async () => {
    delivery.setTarget(targetOf(1, [replica('web-1', 3)], [site, secret(3)]));
    await expect(containerInputsFor('node-1', delivery)(replica('web-1', 4))).rejects.toThrow(/^secret db version 4 is not on this node: /);
  });

  it('removes a file once neither the target nor any container names it, and not before', async () => {
    const old = replica('web-1', 3);
    delivery.setTarget(targetOf(1, [old], [site, secret(3)]));
    await delivery.settled();
    const oldFile = secrets.pathOf({ name: 'db', version: 3, mode: 0o400, uid: 100, gid: 101 });
    expect(await secrets.held()).toEqual([oldFile]);
    // An update: the outdated container still serves with version 3 while the target names 4.
    listed = [container(old, [oldFile])];
    const next = replica('web-2', 4);
    delivery.setTarget(targetOf(2, [next], [site, secret(4)]));
    await delivery.settled();
    const newFile = secrets.pathOf({ name: 'db', version: 4, mode: 0o400, uid: 100, gid: 101 });
    expect((await secrets.held()).sort()).toEqual([oldFile, newFile].sort());
    // The outdated container is gone: the next sweep takes its file, and only its file.
    listed = [container(next, [newFile])];
    await waitFor(async () => (await secrets.held()).length === 1);
    expect(await secrets.held()).toEqual([newFile]);
    expect(await configs.held()).toHaveLength(1);
    // No replica left and no container: nothing stays.
    listed = [];
    delivery.setTarget(targetOf(3, [], []));
    await delivery.settled();
    expect(await secrets.held()).toEqual([]);
    expect(await configs.held()).toEqual([]);
  });

  it('without a place for files, fails a replica that mounts one but still resolves env', async () => {
    const bare = new ValueDelivery({ nodeId: 'n', runtime: { listContainers: async () => [] }, stores: null, logger: silentLogger });
    const r = replica('web-1', 3);
    bare.setTarget(targetOf(1, [r], [site, secret(3)]));
    await expect(containerInputsFor('n', bare)(r)).rejects.toThrow(/keeps no files of configs and secrets/);
    const envOnly = replica('web-1', 3, { files: undefined });
    delete envOnly.container.files;
    expect((await containerInputsFor('n', bare)(envOnly)).env).toEqual({ PLAIN: '1', DB: 'pw-3' });
    await bare.stop();
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
