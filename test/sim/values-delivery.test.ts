/**
 * Configs and secrets on their way to the nodes (real hub and agents, simulated engines): a
 * secret goes only to the node that runs a replica using it (the raw frames each agent receives
 * are searched for it), lands there as a file its container mounts and as env, goes when the
 * last such replica goes, and a new value rolls the service onto the new version's file.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { Agent } from '../../agent/agent.js';
import type { SimulatedContainer } from '../../agent/runtime/simulated-runtime.js';
import { ValueFileStore } from '../../agent/values/value-file-store.js';
import { RecordingProxy } from '../helpers/recording-proxy.js';
import { SimFleet, simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

const image = 'tether-test/busybox:1';
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** One tmpfs for every agent's secrets (as root): each store checks that its dir is on one. */
let tmpfsDir: string;
beforeAll(async () => {
  tmpfsDir = await mkdtemp(path.join(os.tmpdir(), 'tether-sim-secrets-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', tmpfsDir]);
});
afterAll(async () => {
  execFileSync('umount', [tmpfsDir]);
  await rm(tmpfsDir, { recursive: true, force: true });
});

let fleet: SimFleet;
const proxies: RecordingProxy[] = [];
afterEach(async () => {
  await fleet?.close();
  for (const p of proxies.splice(0)) await p.close();
});

interface ValueAgent {
  agent: Agent;
  proxy: RecordingProxy;
  secretsDir: string;
  configsDir: string;
}

/** An agent like SimFleet.addAgent's, behind a proxy that records what the hub sends it, with dirs for value files. */
async function addValueAgent(name: string, labels: Record<string, string>): Promise<ValueAgent> {
  const { token } = await fleet.hub.nodes.createJoinToken(600);
  const joined = await fleet.hub.nodes.join(token, name, labels);
  if (!joined) throw new Error('join refused');
  const proxy = await RecordingProxy.start(fleet.url);
  proxies.push(proxy);
  const secretsDir = path.join(tmpfsDir, name, 'secrets');
  const configsDir = path.join(fleet.dataDir, name, 'configs');
  const agent = new Agent({
    identity: { hubUrl: proxy.url, nodeId: joined.nodeId, credential: joined.credential },
    name,
    labels,
    advertiseAddress: null,
    publishAddress: `127.0.0.${fleet.agents.length + 2}`,
    runtime: fleet.runtime,
    targetCache: null,
    valueFiles: {
      secrets: new ValueFileStore({ source: 'secret', dir: secretsDir }),
      configs: new ValueFileStore({ source: 'config', dir: configsDir }),
    },
    valueSweepIntervalMs: 100,
    facts: simFacts({ hostname: name }),
    logger: silentLogger,
    resyncIntervalMs: 1000,
    imageReleaseGraceMs: 0,
    reconnectBaseMs: 50,
    reconnectCapMs: 500,
    retryBaseMs: 50,
  });
  fleet.agents.push(agent);
  await agent.start();
  await vi.waitFor(() => expect(agent.link.connected).toBe(true), { timeout: 10_000, interval: 10 });
  return { agent, proxy, secretsDir, configsDir };
}

const runningOf = (service: string, nodeId?: string): SimulatedContainer[] =>
  fleet.runtime.containers().filter((c) => c.service === service && c.state === 'running' && (nodeId === undefined || c.nodeId === nodeId));

const bindAt = (c: SimulatedContainer, target: string) => {
  const m = c.inputs?.mounts.find((x) => x.type === 'bind' && x.target === target);
  return m?.type === 'bind' ? m : undefined;
};

it('sends a secret only to the node whose replica uses it, mounts it there, rolls on a new value and removes it with the last replica', async () => {
  fleet = await SimFleet.start();
  const a = await addValueAgent('db-node', { role: 'db' });
  const b = await addValueAgent('web-node-1', { role: 'web' });
  const c = await addValueAgent('web-node-2', { role: 'web' });
  const secretV1 = `pw-one-${randomBytes(8).toString('hex')}`;
  const secretV2 = `pw-two-${randomBytes(8).toString('hex')}`;

  expect((await fleet.api('PUT', '/v1/secrets/db', { value: secretV1 })).status).toBe(201);
  expect((await fleet.api('PUT', '/v1/configs/site', { value: 'site = shop 17' })).status).toBe(201);
  const api = {
    image,
    replicas: 1,
    constraints: ['node.labels.role == db'],
    secrets: [{ name: 'db' }],
    configs: [{ name: 'site', target: '/etc/site.conf' }],
    env: { DB_PASSWORD: { fromSecret: 'db' }, PLAIN: 'x' },
  };
  expect((await fleet.api('PUT', '/v1/services/api', api)).status).toBe(201);
  expect((await fleet.api('PUT', '/v1/services/web', { image, replicas: 2, constraints: ['node.labels.role == web'] })).status).toBe(201);
  await vi.waitFor(() => {
    expect(runningOf('api', a.agent.nodeId)).toHaveLength(1);
    expect(runningOf('web').map((x) => x.nodeId).sort()).toEqual([b.agent.nodeId, c.agent.nodeId].sort());
  }, { timeout: 15_000, interval: 20 });

  // On its node: a read-only file at /run/secrets/db on the tmpfs, the config's file, the env value.
  const first = runningOf('api')[0]!;
  const secretMount = bindAt(first, '/run/secrets/db')!;
  expect(secretMount.readOnly).toBe(true);
  expect(path.dirname(secretMount.source)).toBe(a.secretsDir);
  expect(await readFile(secretMount.source, 'utf8')).toBe(secretV1);
  expect(await readFile(bindAt(first, '/etc/site.conf')!.source, 'utf8')).toBe('site = shop 17');
  expect(first.inputs?.env).toMatchObject({ DB_PASSWORD: secretV1, PLAIN: 'x' });

  // In transit: the node that runs it received it; the others, which run other replicas, never did.
  expect(a.proxy.sawText(b64(secretV1))).toBe(true);
  for (const other of [b, c]) {
    expect(other.proxy.received().length).toBeGreaterThan(0);
    expect(other.proxy.sawText(b64(secretV1))).toBe(false);
    expect(other.proxy.sawText(secretV1)).toBe(false);
    // No secret ever reached it: its secrets' dir was never even made.
    expect(await readdir(other.secretsDir).catch(() => [])).toEqual([]);
  }

  // A new value rolls the service: the new container mounts the new version's file, and the old
  // file goes once its container is gone.
  expect((await fleet.api('PUT', '/v1/secrets/db', { value: secretV2 })).status).toBe(200);
  await vi.waitFor(async () => {
    const now = runningOf('api', a.agent.nodeId);
    expect(now).toHaveLength(1);
    expect(now[0]!.specHash).not.toBe(first.specHash);
    expect(await readFile(bindAt(now[0]!, '/run/secrets/db')!.source, 'utf8')).toBe(secretV2);
    expect(now[0]!.inputs?.env.DB_PASSWORD).toBe(secretV2);
  }, { timeout: 15_000, interval: 20 });
  const second = runningOf('api')[0]!;
  await vi.waitFor(async () => {
    expect(fleet.runtime.containers().filter((x) => x.service === 'api')).toHaveLength(1);
    expect(await readdir(a.secretsDir)).toEqual([path.basename(bindAt(second, '/run/secrets/db')!.source)]);
  }, { timeout: 15_000, interval: 20 });
  for (const other of [b, c]) expect(other.proxy.sawText(b64(secretV2))).toBe(false);

  // The last replica that uses it goes: so do its files and the values the node held.
  expect((await fleet.api('DELETE', '/v1/services/api')).status).toBe(200);
  await vi.waitFor(async () => {
    expect(fleet.runtime.containers().filter((x) => x.service === 'api')).toHaveLength(0);
    expect(await readdir(a.secretsDir)).toEqual([]);
    expect(await readdir(a.configsDir)).toEqual([]);
    expect(a.agent.values.heldCount).toBe(0);
  }, { timeout: 15_000, interval: 20 });
});
