import { beforeEach, describe, expect, it } from 'vitest';
import { tether } from './cli-harness.js';
import { ADMIN, cliHubPerTest } from './cli-hub.js';

const t = cliHubPerTest();
let eu1: string;
let eu2: string;
let us1: string;
beforeEach(async () => {
  eu1 = await t.hub.connect('edge-eu-1', { zone: 'eu-1' });
  eu2 = (await t.hub.join('edge-eu-2', { zone: 'eu-1', ring: 'canary' })).nodeId;
  us1 = (await t.hub.join('edge-us-1', { zone: 'us-1' })).nodeId;
  t.hub.requests.length = 0;
});

const run = (...argv: string[]) => tether(argv, { homeDir: t.home.dir, env: { TETHER_HUB: t.hub.url, TETHER_TOKEN: ADMIN } });
const names = (stdout: string) => (JSON.parse(stdout) as { nodes: Array<{ name: string }> }).nodes.map((n) => n.name).sort();

describe('tether nodes', () => {
  it('ls is a table of every node with its state and labels', async () => {
    const { code, stdout, stderr } = await run('nodes', 'ls');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ID\s+STATE\s+SCHEDULING\s+ARCH\s+LABELS\s+ADDRESS\s+SEEN$/);
    expect(lines).toHaveLength(4);
    expect(stdout).toMatch(new RegExp(`edge-eu-1\\s+${eu1}\\s+ready\\s+active\\s+x64\\s+zone=eu-1\\s`));
    expect(stdout).toMatch(new RegExp(`edge-eu-2\\s+${eu2}\\s+unreachable\\s+active\\s+-\\s+ring=canary,zone=eu-1\\s`));
  });

  it('-l selects by label (key=value, key!=value), --state by state, through the hub', async () => {
    expect(names((await run('nodes', 'ls', '-l', 'zone=eu-1', '--json')).stdout)).toEqual(['edge-eu-1', 'edge-eu-2']);
    expect(t.hub.requests.at(-1)?.url).toBe('/v1/nodes?selector=node.labels.zone%3D%3Deu-1&limit=500');
    expect(names((await run('nodes', 'ls', '-l', 'zone=eu-1', '-l', 'ring!=canary', '--json')).stdout)).toEqual(['edge-eu-1']);
    expect(names((await run('nodes', 'ls', '--state', 'unreachable', '--json')).stdout)).toEqual(['edge-eu-2', 'edge-us-1']);
    const refused = await run('nodes', 'ls', '--state', 'sleeping');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^tether: state: unknown state "sleeping".* \[400 invalid_query\]\n$/);
  });

  it('ls pages through continue until done; --limit stops early', async () => {
    const all = await run('nodes', 'ls', '--page-size', '1', '--json');
    expect(names(all.stdout)).toEqual(['edge-eu-1', 'edge-eu-2', 'edge-us-1']);
    expect(t.hub.requests).toHaveLength(3);
    t.hub.requests.length = 0;
    const two = await run('nodes', 'ls', '--page-size', '1', '--limit', '2', '--json');
    expect((JSON.parse(two.stdout) as { nodes: unknown[] }).nodes).toHaveLength(2);
    expect(t.hub.requests).toHaveLength(2);
  });

  it('inspect finds a node by id or by name', async () => {
    const byName = await run('nodes', 'inspect', 'edge-us-1');
    expect(byName.code).toBe(0);
    expect(byName.stdout).toContain(`id: ${us1}\nname: edge-us-1\n`);
    const byId = JSON.parse((await run('nodes', 'inspect', us1, '--json')).stdout) as { name: string };
    expect(byId.name).toBe('edge-us-1');
    const missing = await run('nodes', 'inspect', 'edge-xx');
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'tether: no node with id or name "edge-xx" (tether nodes ls lists them)\n' });
  });

  it('label sets and removes labels, with If-Match on the revision it read', async () => {
    const { code, stdout } = await run('nodes', 'label', 'edge-us-1', 'ring=canary', 'zone-');
    expect(code).toBe(0);
    expect(stdout).toBe(`node edge-us-1 (${us1}) labels: ring=canary\n`);
    const patch = t.hub.requests.find((r) => r.method === 'PATCH');
    expect(patch?.ifMatch).toMatch(/^"\d+"$/);
    expect((await t.hub.call('GET', `/v1/nodes/${us1}`)).body.labels).toEqual({ ring: 'canary' });
    expect((await run('nodes', 'label', 'edge-us-1', 'oops')).code).toBe(2);
  });

  it('label refuses to overwrite a change made since it read the node', async () => {
    t.hub.beforeNextWrite(async () => {
      expect((await t.hub.call('PATCH', `/v1/nodes/${us1}`, { labels: { zone: 'us-2' } })).status).toBe(200);
    });
    const { code, stderr } = await run('nodes', 'label', 'edge-us-1', 'ring=canary');
    expect(code).toBe(1);
    expect(stderr).toMatch(/\[412 revision_mismatch\]\n$/);
    expect((await t.hub.call('GET', `/v1/nodes/${us1}`)).body.labels).toEqual({ zone: 'us-2' });
  });

  it('rm removes a node for good', async () => {
    const { code, stdout } = await run('nodes', 'rm', 'edge-us-1');
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^node edge-us-1 \\(${us1}\\) removed: node removed`));
    expect((await t.hub.call('GET', `/v1/nodes/${us1}`)).status).toBe(404);
  });
});

describe('tether join-token', () => {
  it('prints the command to run on a device; --json gives the answer', async () => {
    const { code, stdout } = await run('join-token', '--ttl', '2h', '--uses', '3', '--label', 'zone=eu-2');
    expect(code).toBe(0);
    // The hub's one-liner (installCommand), for a device to paste.
    expect(stdout).toMatch(/^join token \S+ \(expires \S+, 3 use\(s\)\); on the device, run:\n\n {2}curl -fsSL \S+\/install\.sh \| sh -s -- --hub \S+ --join-token \S+\n$/);
    const tokens = (await t.hub.call('GET', '/v1/join-tokens')).body.joinTokens as Array<{ uses: number; labels: Record<string, string> }>;
    expect(tokens.at(-1)).toMatchObject({ uses: 3, labels: { zone: 'eu-2' } });

    const json = JSON.parse((await run('join-token', '--json')).stdout) as { token: string; installCommand: string };
    expect(json.installCommand).toContain(`--join-token ${json.token}`);
  });

  it("the hub's refusal of a ttl names the field", async () => {
    const { code, stderr } = await run('join-token', '--ttl', '5s');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^tether: ttl: must be at least .+ \[400 invalid_request\]\n$/);
  });
});
