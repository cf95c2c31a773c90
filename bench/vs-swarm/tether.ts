/**
 * Tether's side: a hub (dist/hub/main.js) and one agent (dist/agent/main.js) on the real engine,
 * loopback only, in a temp dir; each started and killed by pid (bench/processes.ts). Their logs
 * are kept in files: the agent's say when it created, started and removed each container, which
 * is where the time of an update goes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, startHub, startProgram, terminate, type NodeProc } from '../processes.js';

/** One API call at most this long. */
const API_TIMEOUT_MS = 30_000;
const JOIN_TIMEOUT_MS = 30_000;

export type Api = <T = any>(method: string, route: string, body?: unknown) => Promise<{ status: number; body: T }>;

export interface Tether {
  api: Api;
  nodeId: string;
  hubLog: string;
  agentLog: string;
  stop: () => Promise<void>;
}

export async function startTether(dir: string, runId: string): Promise<Tether> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const hubDir = path.join(dir, 'hub');
  const hubLog = path.join(dir, 'hub.log');
  const agentLog = path.join(dir, 'agent.log');
  let hub: NodeProc | null = null;
  let agent: NodeProc | null = null;
  const stop = async () => {
    await terminate(agent);
    await terminate(hub);
  };
  try {
    hub = await startHub(url, { args: ['--port', String(port), '--data-dir', hubDir], logFile: hubLog, inspect: false });
    const token = (await readFile(path.join(hubDir, 'admin-token'), 'utf8')).trim();
    const api: Api = async (method, route, body) => {
      const res = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(API_TIMEOUT_MS),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    const join = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    if (join.status !== 201) throw new Error(`POST /v1/join-tokens: HTTP ${join.status} ${JSON.stringify(join.body)}`);
    agent = startProgram(
      'agent/main.js',
      ['--hub', url, '--join-token', join.body.token, '--data-dir', path.join(dir, 'agent'), '--name', `vs-swarm-${runId}`],
      agentLog,
    );
    const deadline = Date.now() + JOIN_TIMEOUT_MS;
    for (;;) {
      const nodes = (await api<{ nodes: Array<{ id: string; state: string }> }>('GET', '/v1/nodes')).body.nodes;
      const ready = nodes.find((n) => n.state === 'ready');
      if (ready) return { api, nodeId: ready.id, hubLog, agentLog, stop };
      if (agent.child.exitCode !== null) throw new Error(`the agent exited (${agent.child.exitCode}); see ${agentLog}`);
      if (Date.now() > deadline) throw new Error(`the agent was not ready after ${JOIN_TIMEOUT_MS} ms; see ${agentLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What the benchmark changes of a service: the rest is the same on every call. */
export interface TetherSpec {
  image: string;
  command: string[];
  replicas: number;
  labels: Record<string, string>;
  parallelism: number;
  monitor: string;
}

/** The full spec for a PUT: `update` as Swarm's settings on the other side. */
function body(s: TetherSpec): object {
  return {
    image: s.image,
    command: s.command,
    replicas: s.replicas,
    labels: s.labels,
    update: { parallelism: s.parallelism, order: 'stop-first', delay: '0s', monitor: s.monitor, maxFailureRatio: 0, failureAction: 'rollback' },
  };
}

export async function putService(api: Api, name: string, spec: TetherSpec): Promise<void> {
  const res = await api('PUT', `/v1/services/${name}`, body(spec));
  if (res.status !== 200 && res.status !== 201) throw new Error(`PUT /v1/services/${name}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

export async function scaleService(api: Api, name: string, replicas: number): Promise<void> {
  const res = await api('POST', `/v1/services/${name}/scale`, { replicas });
  if (res.status !== 200) throw new Error(`POST /v1/services/${name}/scale: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

export async function deleteService(api: Api, name: string): Promise<void> {
  const res = await api('DELETE', `/v1/services/${name}`);
  if (res.status !== 200 && res.status !== 204 && res.status !== 404) throw new Error(`DELETE /v1/services/${name}: HTTP ${res.status}`);
}
