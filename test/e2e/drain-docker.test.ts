/**
 * A drain end to end: the hub and two agents (two nodes on the one engine) as real processes. A
 * service with an http health check and no host port runs on one node; that node is drained. The
 * replica moves to the other node, and the engine's own event times show the old container
 * stopping only after the new one could pass its check (its server starts 3 s after the container).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { describeDocker, docker } from '../helpers/docker.js';
import { startE2eFleet, type E2eFleet } from '../helpers/e2e-fleet.js';

const IMAGE = 'tether-test/busybox:1';
/** The page answers 3 s after the container starts: a replacement is not healthy before then. */
const SLOW_HTTPD = ['sh', '-c', 'sleep 3; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www'];
const SERVER_DELAY_NS = 3_000_000_000n;

interface EngineEvent {
  status?: string;
  Action?: string;
  id?: string;
  timeNano: number;
  Actor?: { ID: string; Attributes: Record<string, string> };
}

/** The engine's container events for the service between two times (seconds), oldest first. */
async function engineEvents(service: string, sinceS: number, untilS: number): Promise<EngineEvent[]> {
  const { stdout } = await promisify(execFile)('docker', [
    'events',
    '--since',
    String(sinceS),
    '--until',
    String(untilS),
    '--filter',
    'type=container',
    '--filter',
    `label=${LABELS.service}=${service}`,
    '--format',
    '{{json .}}',
  ]);
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as EngineEvent);
}

const timeOf = (events: EngineEvent[], containerId: string, action: string): bigint => {
  const e = events.find((x) => (x.Actor?.ID ?? x.id) === containerId && (x.Action ?? x.status) === action);
  if (!e) throw new Error(`no ${action} event for ${containerId}: ${JSON.stringify(events.map((x) => [x.Actor?.ID.slice(0, 12), x.Action]))}`);
  return BigInt(e.timeNano);
};

describeDocker('drain, a hub and two agents on the real engine', () => {
  const service = `drain-${process.pid}`;
  let fleet: E2eFleet;
  const api: E2eFleet['api'] = (...args) => fleet.api(...args);
  let nodeIds: string[] = [];

  beforeAll(async () => {
    fleet = await startE2eFleet('drain', ['127.0.0.1', '127.0.0.2']);
    nodeIds = fleet.nodeIds;
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
  });

  const replicas = async () =>
    (await api<{ status: { replicas: Array<{ replicaId: string; nodeId: string; state: string; health: string | null; replacedBy: string | null }> } }>('GET', `/v1/services/${service}`)).body
      .status.replicas;

  it('moves the replica to the other node, the old container stopping only after the new one is healthy', async () => {
    const sinceS = Math.floor(Date.now() / 1000) - 1;
    const healthcheck = { type: 'http', port: 8080, path: '/index.html', interval: '500ms', timeout: '500ms', retries: 1 };
    expect((await api('PUT', `/v1/services/${service}`, { image: IMAGE, command: SLOW_HTTPD, replicas: 1, healthcheck })).status).toBe(201);
    const before = await vi.waitFor(
      async () => {
        const [r, ...rest] = await replicas();
        expect(rest).toEqual([]);
        expect(r).toMatchObject({ state: 'running', health: 'healthy' });
        return r!;
      },
      { timeout: 60_000, interval: 250 },
    );
    const drainedId = before.nodeId;
    const otherId = nodeIds.find((id) => id !== drainedId) as string;
    const [oldContainer] = await docker.listContainers([`${LABELS.nodeId}=${drainedId}`, `${LABELS.service}=${service}`]);
    expect(oldContainer?.State).toBe('running');

    expect((await api('POST', `/v1/nodes/${drainedId}/drain`)).status).toBe(200);
    // Watched from the hub: when it first saw the replacement healthy.
    let replacementHealthyAtNs: bigint | null = null;
    const after = await vi.waitFor(
      async () => {
        const now = await replicas();
        const fresh = now.find((r) => r.nodeId === otherId);
        if (fresh?.health === 'healthy' && replacementHealthyAtNs === null) replacementHealthyAtNs = BigInt(Date.now()) * 1_000_000n;
        expect(now).toHaveLength(1);
        expect(now[0]).toMatchObject({ nodeId: otherId, state: 'running', health: 'healthy', replacedBy: null });
        expect(await docker.listContainers([`${LABELS.nodeId}=${drainedId}`, `${LABELS.service}=${service}`])).toEqual([]);
        return now[0]!;
      },
      { timeout: 60_000, interval: 100 },
    );
    expect(after.replicaId).not.toBe(before.replicaId);
    const drained = (await api<{ scheduling: string; drain: { replicasLeft: number } }>('GET', `/v1/nodes/${drainedId}`)).body;
    expect(drained).toMatchObject({ scheduling: 'draining', drain: { replicasLeft: 0 } });

    const [newContainer] = await docker.listContainers([`${LABELS.nodeId}=${otherId}`, `${LABELS.service}=${service}`]);
    const events = await engineEvents(service, sinceS, Math.ceil(Date.now() / 1000) + 1);
    const newStartedNs = timeOf(events, newContainer!.Id, 'start');
    const oldDiedNs = timeOf(events, oldContainer!.Id, 'die');
    // The old one served until the new one's server was up (and its check passed).
    expect(oldDiedNs - newStartedNs).toBeGreaterThanOrEqual(SERVER_DELAY_NS);
    if (replacementHealthyAtNs !== null) expect(oldDiedNs).toBeGreaterThanOrEqual(replacementHealthyAtNs - 200_000_000n);
    expect((await api('DELETE', `/v1/services/${service}`)).status).toBe(200);
  }, 120_000);
});
