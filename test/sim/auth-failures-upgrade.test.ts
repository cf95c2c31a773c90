/**
 * Refused node credentials at the agent upgrade count against their address like the API's
 * refused tokens: past the allowance the 401 comes late, then a 429 with Retry-After before any
 * upgrade, logged once per burst; other addresses and right credentials are unaffected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUTH_FAILURE_LIMITS } from '../../hub/auth/auth-failures.js';
import type { Hub } from '../../hub/hub.js';
import { listeningHub } from '../helpers/api-hub.js';
import { connectRaw, readResponseHead, upgradeRequest, type HubAddress } from '../helpers/raw-upgrade.js';

let hub: Hub;
let address: HubAddress;
let close: () => Promise<void>;
const logLines: Array<{ msg: string; address?: string; kind?: string }> = [];

beforeAll(async () => {
  ({ hub, address, close } = await listeningHub('tether-auth-upgrade-', {
    adminToken: 'admin-token-for-upgrade-failures',
    config: { authFailures: { ...DEFAULT_AUTH_FAILURE_LIMITS, allowance: 3, slowedFailures: 2, slowDownMs: 50 } },
    logger: { level: 'warn', stream: { write: (line: string) => logLines.push(JSON.parse(line)) } },
  }));
});

afterAll(() => close());

async function upgrade(credential: string, localAddress: string): Promise<{ status: number; head: string }> {
  const socket = await connectRaw(address, localAddress);
  try {
    socket.write(upgradeRequest({ credential }));
    return await readResponseHead(socket);
  } finally {
    socket.destroy();
  }
}

describe('refused node credentials at the agent upgrade', () => {
  it('are slowed, then refused with 429 before the upgrade, logged once; other addresses and right credentials go on', async () => {
    const { token } = await hub.nodes.createJoinToken(60);
    const device = (await hub.nodes.join(token, 'edge-1', {}))!;
    const wrong = `tnc_${device.nodeId}.${'A'.repeat(43)}`;

    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await upgrade(wrong, '127.0.0.2')).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const refused = await upgrade(wrong, '127.0.0.2');
    expect(refused.status, refused.head).toBe(429);
    expect(refused.head).toMatch(/\r\nRetry-After: 60\r\n/);
    expect((await upgrade('not-a-credential', '127.0.0.2')).status).toBe(429);

    // Another address has its own allowance; the right credential gets in from both.
    expect((await upgrade(wrong, '127.0.0.3')).status).toBe(401);
    expect((await upgrade(device.credential, '127.0.0.3')).status).toBe(101);
    expect((await upgrade(device.credential, '127.0.0.2')).status).toBe(101);

    expect(hub.stats.auth.failuresByKind.node_credential).toBe(8);
    expect(hub.stats.auth.refusedByKind.node_credential).toBe(2);
    const bursts = logLines.filter((l) => l.msg.startsWith('too many failed authentications'));
    expect(bursts).toEqual([expect.objectContaining({ address: '127.0.0.2', kind: 'node_credential' })]);
  });
});
