import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { createCa, loadOrCreateHubTls, pemCertificates, serverNames, type HubTls } from '../../hub/tls/hub-certificates.js';
import { tether } from './cli-harness.js';
import { ADMIN, cliHubPerTest } from './cli-hub.js';

let tlsDir: string;
let material: HubTls;
let caPem: string;
beforeAll(async () => {
  tlsDir = await mkdtemp(path.join(os.tmpdir(), 'tether-cli-tls-'));
  material = await loadOrCreateHubTls(tlsDir, serverNames('127.0.0.1', []));
  caPem = pemCertificates(material.cert).at(-1)!;
});
afterAll(async () => rm(tlsDir, { recursive: true, force: true }));

const t = cliHubPerTest(() => ({ tls: material }));

const run = (argv: string[], env: Record<string, string> = {}) => tether(argv, { homeDir: t.home.dir, env });
const asAdmin = { TETHER_HUB: '', TETHER_TOKEN: ADMIN };

describe('tether over HTTPS', () => {
  it("refuses a hub whose CA it was not given, and says how to trust it", async () => {
    const { code, stderr } = await run(['nodes', 'ls'], { ...asAdmin, TETHER_HUB: t.hub.url });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^tether: the hub at https:\/\/127\.0\.0\.1:\d+ presents a certificate this CLI does not trust \(SELF_SIGNED_CERT_IN_CHAIN\): give --ca-fingerprint .+\n$/);
  });

  it('trusts the CA pinned by --ca-fingerprint, or given by --ca-cert', async () => {
    const pinned = await run(['nodes', 'ls', '--ca-fingerprint', material.caFingerprint], { ...asAdmin, TETHER_HUB: t.hub.url });
    expect(pinned).toMatchObject({ code: 0, stderr: '' });
    const caFile = path.join(t.home.dir, 'ca.pem');
    await writeFile(caFile, caPem);
    const given = await run(['nodes', 'ls', '--ca-cert', caFile], { ...asAdmin, TETHER_HUB: `https://localhost:${t.hub.port}` });
    expect(given).toMatchObject({ code: 0, stderr: '' });
  });

  it('a --ca-cert that cannot be read, or holds no certificate, is one line and exit 1', async () => {
    const missing = await run(['nodes', 'ls', '--ca-cert', path.join(t.home.dir, 'nope.pem')], { ...asAdmin, TETHER_HUB: t.hub.url });
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringMatching(/^tether: --ca-cert \S+nope\.pem: ENOENT[^\n]*\n$/) });
    const notPem = path.join(t.home.dir, 'not.pem');
    await writeFile(notPem, 'hello');
    const refused = await run(['nodes', 'ls', '--ca-cert', notPem], { ...asAdmin, TETHER_HUB: t.hub.url });
    expect(refused).toMatchObject({ code: 1, stderr: `tether: --ca-cert ${notPem}: no PEM certificate in it\n` });
  });

  it('refuses a hub that presents another CA than the pinned one', async () => {
    const other = caFingerprint(createCa().certPem);
    const { code, stderr } = await run(['nodes', 'ls', '--ca-fingerprint', other], { ...asAdmin, TETHER_HUB: t.hub.url });
    expect(code).toBe(1);
    expect(stderr).toBe(
      `tether: the hub at ${t.hub.url} presents a certificate from CA ${material.caFingerprint}, not from ${other}: another hub on that address, or someone impersonating it; refusing it\n`,
    );
    expect(t.hub.requests).toEqual([]);
  });

  it('plain http:// to an HTTPS hub says to try https://', async () => {
    const { code, stderr } = await run(['nodes', 'ls'], { ...asAdmin, TETHER_HUB: t.hub.url.replace('https', 'http') });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^tether: cannot reach the hub at http:\/\/127\.0\.0\.1:\d+: .*\(does it serve HTTPS\? try https:\/\/\)\n$/);
  });
});

describe('tether login', () => {
  it('checks the token, saves hub, token and pinned CA at 0600, and later commands need no flags', async () => {
    const { code, stdout } = await run(['login', t.hub.url, '--token', ADMIN, '--ca-fingerprint', material.caFingerprint]);
    expect(code).toBe(0);
    const file = path.join(t.home.dir, '.config', 'tether', 'config.json');
    expect(stdout).toBe(`logged in to ${t.hub.url}; saved to ${file} with the hub's CA\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    const saved = JSON.parse(await readFile(file, 'utf8')) as { caCert: string };
    expect(saved).toEqual({ hub: t.hub.url, token: ADMIN, caCert: expect.any(String), caPinned: true });
    expect(caFingerprint(saved.caCert)).toBe(material.caFingerprint);

    const later = await run(['nodes', 'ls', '--json']);
    expect(later).toMatchObject({ code: 0, stderr: '', stdout: '{\n  "nodes": []\n}\n' });
  });

  it('--config and TETHER_CONFIG put the file elsewhere', async () => {
    const file = path.join(t.home.dir, 'elsewhere', 'tether.json');
    expect((await run(['login', t.hub.url, '--token', ADMIN, '--ca-fingerprint', material.caFingerprint, '--config', file])).code).toBe(0);
    expect((await run(['nodes', 'ls'], { TETHER_CONFIG: file })).code).toBe(0);
    expect((await run(['nodes', 'ls'])).code).toBe(2);
  });

  it('a token the hub refuses is one line, exit 1, and nothing is saved', async () => {
    const { code, stderr } = await run(['login', t.hub.url, '--token', 'wrong', '--ca-fingerprint', material.caFingerprint]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^tether: the hub at https:\/\/127\.0\.0\.1:\d+ refused the token .*\[401 [a-z_]+\]\n$/);
    await expect(stat(path.join(t.home.dir, '.config', 'tether', 'config.json'))).rejects.toThrow(/ENOENT/);
  });

  it('never sends the saved token to another hub', async () => {
    expect((await run(['login', t.hub.url, '--token', ADMIN, '--ca-fingerprint', material.caFingerprint])).code).toBe(0);
    const { code, stderr } = await run(['nodes', 'ls', '--hub', 'https://127.0.0.2:1']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^tether: no token for https:\/\/127\.0\.0\.2:1/);
  });
});
