import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { caFingerprint, normalizeCaFingerprint } from '../../shared/ca-fingerprint.js';
import { loadOperatorTls, loadOrCreateHubTls, pemCertificates, serverNames } from '../../hub/tls/hub-certificates.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-tls-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const names = serverNames('10.1.2.3', ['hub.example', '192.168.7.7'], 'edge-hub');

describe('the hub CA and server certificate', () => {
  it('are made at the first start: the CA signs a server certificate valid for every name, keys 0600', async () => {
    const dir = await tempDir();
    const tls = await loadOrCreateHubTls(path.join(dir, 'tls'), names);
    expect(tls.caCreated).toBe(true);
    const [server, caPem] = pemCertificates(tls.cert);
    const ca = new X509Certificate(caPem!);
    const cert = new X509Certificate(server!);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
    for (const host of ['localhost', 'edge-hub', 'hub.example']) expect(cert.checkHost(host)).toBe(host);
    for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.7.7']) expect(cert.checkIP(ip)).toBe(ip);
    expect(cert.checkHost('other.example')).toBeUndefined();
    expect(tls.caFingerprint).toBe(caFingerprint(ca));
    expect(tls.caFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    // Ten years for the CA, one for the server certificate.
    expect(new Date(ca.validTo).getTime() - Date.now()).toBeGreaterThan(9.9 * 365 * 86_400_000);
    expect(new Date(cert.validTo).getTime() - Date.now()).toBeGreaterThan(360 * 86_400_000);
    for (const file of ['ca.key', 'server.key']) expect((await stat(path.join(dir, 'tls', file))).mode & 0o777).toBe(0o600);
  });

  it('are kept across starts, and the server certificate is issued again only near its end or for a new name', async () => {
    const dir = path.join(await tempDir(), 'tls');
    const first = await loadOrCreateHubTls(dir, names);
    const again = await loadOrCreateHubTls(dir, names);
    expect(again.caCreated).toBe(false);
    expect(again.serverIssuedBecause).toBeNull();
    expect(again.cert).toBe(first.cert);
    expect(again.caFingerprint).toBe(first.caFingerprint);

    const nearEnd = new Date(Date.now() + 340 * 86_400_000);
    const renewed = await loadOrCreateHubTls(dir, names, nearEnd);
    expect(renewed.serverIssuedBecause).toMatch(/^expires/);
    expect(renewed.caFingerprint).toBe(first.caFingerprint);
    expect(renewed.cert).not.toBe(first.cert);

    const withName = await loadOrCreateHubTls(dir, serverNames('10.1.2.3', ['new.example'], 'edge-hub'));
    expect(withName.serverIssuedBecause).toContain('new.example');
    expect(withName.caFingerprint).toBe(first.caFingerprint);
  });

  it('two hubs make two different CAs', async () => {
    const a = await loadOrCreateHubTls(path.join(await tempDir(), 'tls'), names);
    const b = await loadOrCreateHubTls(path.join(await tempDir(), 'tls'), names);
    expect(a.caFingerprint).not.toBe(b.caFingerprint);
  });

  it('refuses to replace half a CA', async () => {
    const dir = path.join(await tempDir(), 'tls');
    await loadOrCreateHubTls(dir, names);
    await rm(path.join(dir, 'ca.key'));
    await expect(loadOrCreateHubTls(dir, names)).rejects.toThrow(/ca\.crt without ca\.key/);
  });

  it("takes the operator's certificate and key: the last certificate of the file is the one pinned", async () => {
    const dir = await tempDir();
    const own = await loadOrCreateHubTls(path.join(dir, 'tls'), names);
    await writeFile(path.join(dir, 'cert.pem'), own.cert);
    await writeFile(path.join(dir, 'key.pem'), own.key);
    const given = await loadOperatorTls(path.join(dir, 'cert.pem'), path.join(dir, 'key.pem'));
    expect(given.caFingerprint).toBe(own.caFingerprint);

    const other = await loadOrCreateHubTls(path.join(dir, 'other'), names);
    await writeFile(path.join(dir, 'other-key.pem'), other.key);
    await expect(loadOperatorTls(path.join(dir, 'cert.pem'), path.join(dir, 'other-key.pem'))).rejects.toThrow(/is not the key of the first certificate/);
    // A file without its root: agents could not pin anything that verifies.
    await writeFile(path.join(dir, 'leaf.pem'), pemCertificates(own.cert)[0]!);
    await expect(loadOperatorTls(path.join(dir, 'leaf.pem'), path.join(dir, 'key.pem'))).rejects.toThrow(/must end with the root CA/);
    await writeFile(path.join(dir, 'empty.pem'), 'nothing\n');
    await expect(loadOperatorTls(path.join(dir, 'empty.pem'), path.join(dir, 'key.pem'))).rejects.toThrow(/holds no PEM certificate/);
    expect(await readFile(path.join(dir, 'key.pem'), 'utf8')).toBe(own.key);
  });
});

describe('CA fingerprints', () => {
  it('accept what openssl prints (colons, upper case) and refuse anything else', () => {
    const hex = 'ab'.repeat(32);
    expect(normalizeCaFingerprint(`sha256:${hex}`)).toBe(`sha256:${hex}`);
    expect(normalizeCaFingerprint(`sha256:${hex.toUpperCase().match(/../g)!.join(':')}`)).toBe(`sha256:${hex}`);
    expect(normalizeCaFingerprint(hex)).toBeNull();
    expect(normalizeCaFingerprint(`sha256:${hex.slice(2)}`)).toBeNull();
    expect(normalizeCaFingerprint(`sha1:${hex}`)).toBeNull();
  });
});
