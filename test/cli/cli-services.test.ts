import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { tether, until } from './cli-harness.js';
import { ADMIN, cliHubPerTest } from './cli-hub.js';

const IMAGE = '127.0.0.1:5000/busybox:1';

const t = cliHubPerTest();

const run = (argv: string[], stdin?: string) =>
  tether(argv, { homeDir: t.home.dir, env: { TETHER_HUB: t.hub.url, TETHER_TOKEN: ADMIN }, ...(stdin !== undefined ? { stdin } : {}) });

async function file(name: string, text: string): Promise<string> {
  const at = path.join(t.home.dir, name);
  await writeFile(at, text);
  return at;
}

const TWO_SERVICES = `
name: web
image: ${IMAGE}
replicas: 2
labels: { team: edge }
---
- name: api
  image: ${IMAGE}
- name: db
  image: ${IMAGE}
  labels: { team: data }
`;

describe('tether apply', () => {
  it('creates every service of a YAML stream (documents and lists), then finds them unchanged', async () => {
    const at = await file('fleet.yaml', TWO_SERVICES);
    const first = await run(['apply', '-f', at]);
    expect(first).toEqual({ code: 0, stderr: '', stdout: 'service web created (revision 1)\nservice api created (revision 1)\nservice db created (revision 1)\n' });
    expect((await t.hub.call('GET', '/v1/services/web')).body).toMatchObject({ revision: 1, spec: { image: IMAGE, replicas: 2 } });

    const again = await run(['apply', '-f', at]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('service web unchanged (revision 1)');
  });

  it('sends If-Match with the revision it read, and a change made meanwhile is refused, not overwritten', async () => {
    await t.hub.call('PUT', '/v1/services/web', { image: IMAGE, replicas: 1 });
    const at = await file('web.yaml', `name: web\nimage: ${IMAGE}\nreplicas: 3\n`);
    t.hub.requests.length = 0;
    // Another operator scales web between apply's read and its write.
    t.hub.beforeNextWrite(async () => {
      expect((await t.hub.call('POST', '/v1/services/web/scale', { replicas: 5 })).status).toBe(200);
    });
    const { code, stdout, stderr } = await run(['apply', '-f', at]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^tether: service web: .*revision 2.*\[412 revision_mismatch\]\ntether: 1 of 1 service\(s\) not applied\n$/);
    expect(t.hub.requests.find((r) => r.method === 'PUT')?.ifMatch).toBe('"1"');
    expect((await t.hub.call('GET', '/v1/services/web')).body).toMatchObject({ revision: 2, spec: { replicas: 5 } });
  });

  it('creates a new service only if no one created it meanwhile (If-None-Match: *), never overwriting theirs', async () => {
    const at = await file('web.yaml', `name: web\nimage: ${IMAGE}\nreplicas: 3\n`);
    // Another operator creates web between apply's read (not there) and its write.
    t.hub.beforeNextWrite(async () => {
      expect((await t.hub.call('PUT', '/v1/services/web', { image: IMAGE, replicas: 1 })).status).toBe(201);
    });
    const { code, stderr } = await run(['apply', '-f', at]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/exists already.*\[412 revision_mismatch\]/);
    expect((await t.hub.call('GET', '/v1/services/web')).body).toMatchObject({ revision: 1, spec: { replicas: 1 } });
  });

  it('reads a JSON file, and YAML from stdin with -f -', async () => {
    const json = await file('api.json', JSON.stringify([{ name: 'api', image: IMAGE }]));
    expect((await run(['apply', '-f', json])).stdout).toBe('service api created (revision 1)\n');
    const piped = await run(['apply', '-f', '-'], `name: cache\nimage: ${IMAGE}\n`);
    expect(piped).toEqual({ code: 0, stderr: '', stdout: 'service cache created (revision 1)\n' });
  });

  it('a file that does not parse names line and column, and nothing is sent', async () => {
    const at = await file('bad.yaml', `name: web\nimage: ${IMAGE}\n  replicas: 2\n`);
    const { code, stdout, stderr } = await run(['apply', '-f', at]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^tether: ${at.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:8: not valid YAML: .+\\n$`));
    expect(t.hub.requests).toEqual([]);
  });

  it("a spec the hub refuses is one line with the hub's field message; the others still apply", async () => {
    const at = await file('two.yaml', `- name: web\n  image: ${IMAGE}\n  replicas: -1\n- name: api\n  image: ${IMAGE}\n`);
    const { code, stdout, stderr } = await run(['apply', '-f', at]);
    expect(code).toBe(1);
    expect(stdout).toBe('service api created (revision 1)\n');
    expect(stderr).toMatch(/^tether: service web: replicas: .+ \[400 invalid_spec\]\ntether: 1 of 2 service\(s\) not applied\n$/);
  });

  it('--dry-run prints what would change and where replicas would go, and changes nothing', async () => {
    const nodeId = await t.hub.connect('edge-1');
    await t.hub.call('PUT', '/v1/services/web', { image: IMAGE, replicas: 1, ports: [{ containerPort: 80, hostPort: 8080 }] });
    const at = await file('web.yaml', `name: web\nimage: ${IMAGE}\nreplicas: 3\nports: [{ containerPort: 80, hostPort: 8080 }]\n`);
    t.hub.requests.length = 0;
    const { code, stdout } = await run(['apply', '-f', at, '--dry-run']);
    expect(code).toBe(0);
    expect(stdout).toContain('service web: would be updated (dry run: nothing changed)');
    expect(stdout).toMatch(/replicas: 1 -> 3/);
    expect(stdout).toContain(`edge-1 (${nodeId})`);
    // One node, one host port, already taken by web's replica: two would wait.
    expect(stdout).toContain('pending: 2 (0 of 1 matching node fits: 1 has host port tcp/8080 taken)');
    expect(t.hub.requests.find((r) => r.method === 'PUT')?.url).toBe('/v1/services/web?dryRun=true');
    expect((await t.hub.call('GET', '/v1/services/web')).body).toMatchObject({ revision: 1, spec: { replicas: 1 } });

    const json = await run(['apply', '-f', at, '--dry-run', '--json']);
    const answer = JSON.parse(json.stdout) as { services: Array<{ name: string; dryRun: { dryRun: boolean; outcome: string } }> };
    expect(answer.services[0]).toMatchObject({ name: 'web', dryRun: { dryRun: true, outcome: 'updated' } });
  });
});

describe('tether services', () => {
  beforeEach(async () => {
    await t.hub.connect('edge-1');
    await run(['apply', '-f', await file('fleet.yaml', TWO_SERVICES)]);
  });

  it('ls shows a table of every service; -l filters by label; --json gives the views', async () => {
    const { code, stdout } = await run(['services', 'ls']);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATE\s+MODE\s+RUNNING\s+STATES\s+REVISION\s+ROLLOUT\s+IMAGE\s+UPDATED$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['api', 'db', 'web']);
    expect(stdout).toMatch(/\nweb\s+degraded\s+replicated\s+0\/2\s+\S+\s+1\s+-\s+127\.0\.0\.1:5000\/busybox:1\s+\d+s\n/);

    const edge = await run(['services', 'ls', '-l', 'team=edge', '--json']);
    expect((JSON.parse(edge.stdout) as { services: Array<{ name: string }> }).services.map((s) => s.name)).toEqual(['web']);
    expect(t.hub.requests.at(-1)?.url).toBe('/v1/services?selector=service.labels.team%3D%3Dedge&limit=500');
  });

  it('ls follows continue from page to page, and --limit stops early', async () => {
    for (let i = 0; i < 3; i++) await t.hub.call('PUT', `/v1/services/extra-${i}`, { image: IMAGE });
    t.hub.requests.length = 0;
    const all = await run(['services', 'ls', '--json', '--page-size', '2']);
    expect((JSON.parse(all.stdout) as { services: Array<{ name: string }> }).services.map((s) => s.name)).toEqual(['api', 'db', 'extra-0', 'extra-1', 'extra-2', 'web']);
    const pages = t.hub.requests.map((r) => new URL(r.url, t.hub.url).searchParams);
    expect(pages.map((q) => q.get('limit'))).toEqual(['2', '2', '2']);
    expect(pages[0]!.get('continue')).toBeNull();
    expect(pages[1]!.get('continue')).toMatch(/^[A-Za-z0-9_-]+$/);
    const two = await run(['services', 'ls', '--limit', '2', '--json']);
    expect((JSON.parse(two.stdout) as { services: Array<{ name: string }> }).services.map((s) => s.name)).toEqual(['api', 'db']);
  });

  it('ls --state filters by the state the hub gives each service', async () => {
    await t.hub.call('PUT', '/v1/services/idle', { image: IMAGE, replicas: 0 });
    const ready = await run(['services', 'ls', '--state', 'ready', '--json']);
    expect((JSON.parse(ready.stdout) as { services: Array<{ name: string }> }).services.map((s) => s.name)).toEqual(['idle']);
  });

  it('ps lists the replicas; inspect shows the view as YAML or JSON', async () => {
    await until(async () => ((await t.hub.call('GET', '/v1/services/web')).body as { status: { replicaPage: { total: number } } }).status.replicaPage.total === 2);
    const ps = await run(['services', 'ps', 'web']);
    expect(ps.code).toBe(0);
    const rows = ps.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^REPLICA\s+NODE\s+STATE/);
    expect(rows.slice(1)).toHaveLength(2);
    // The node by its name, asked of the hub by id.
    expect(rows[1]).toMatch(/^web\.[0-9a-f]{10}\s+edge-1\s+pending/);

    const inspect = await run(['services', 'inspect', 'web']);
    expect(inspect.stdout).toMatch(/^name: web\nrevision: 1\n/);
    const json = JSON.parse((await run(['services', 'inspect', 'web', '--json'])).stdout) as { name: string };
    expect(json.name).toBe('web');
  });

  it('scale changes the count; rm removes; an unknown service is one line and exit 1', async () => {
    expect(await run(['services', 'scale', 'web', '4'])).toEqual({ code: 0, stderr: '', stdout: 'service web scaled to 4 replica(s) (revision 2)\n' });
    expect((await run(['services', 'rm', 'web'])).stdout).toBe('service web removed\n');
    expect((await t.hub.call('GET', '/v1/services/web')).status).toBe(404);
    const missing = await run(['services', 'inspect', 'web']);
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'tether: no service named "web" (tether services ls lists them)\n' });
    const scaleMissing = await run(['services', 'scale', 'web', '1']);
    expect(scaleMissing.code).toBe(1);
    expect(scaleMissing.stderr).toBe('tether: no service named "web" [404 service_not_found]\n');
  });

  it('a wrong token is one line naming the 401 and what to do', async () => {
    const { code, stderr } = await tether(['services', 'ls'], { homeDir: t.home.dir, env: { TETHER_HUB: t.hub.url, TETHER_TOKEN: 'wrong' } });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^tether: the hub at http:\/\/127\.0\.0\.1:\d+ refused the token \(.+\): check --token or TETHER_TOKEN, or run tether login \[401 [a-z_]+\]\n$/);
  });
});
