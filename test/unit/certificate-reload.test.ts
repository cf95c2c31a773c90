import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateReload } from '../../hub/tls/certificate-reload.js';
import { loadOrCreateHubTls, pemCertificates, serverNames, type HubTls } from '../../hub/tls/hub-certificates.js';
import { servedCertificate } from '../helpers/https-api.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-reload-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const names = serverNames('127.0.0.1', [], 'edge-hub');

async function serve(start: HubTls): Promise<{ server: https.Server; port: number }> {
  const server = https.createServer({ key: start.key, cert: start.cert }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: (server.address() as AddressInfo).port };
}

const fingerprint = (t: HubTls) => new X509Certificate(pemCertificates(t.cert)[0]!).fingerprint256;

function recordingLogger() {
  const errors: string[] = [];
  const infos: string[] = [];
  return { errors, infos, logger: { info: (_o: object, msg: string) => void infos.push(msg), error: (_o: object, msg: string) => void errors.push(msg) } };
}

describe('a running hub reloads its TLS certificate', () => {
  it("serves its own server certificate issued again near its end to new connections, without a restart", async () => {
    const dir = path.join(await tempDir(), 'tls');
    const first = await loadOrCreateHubTls(dir, names);
    const { server, port } = await serve(first);
    let now = new Date();
    const log = recordingLogger();
    const reload = new CertificateReload({
      load: () => loadOrCreateHubTls(dir, names, now),
      apply: (next) => server.setSecureContext({ key: next.key, cert: next.cert }),
      current: first,
      logger: log.logger,
    });
    expect(await reload.check()).toBe('unchanged');
    expect(await servedCertificate(port)).toBe(fingerprint(first));

    now = new Date(Date.now() + 340 * 86_400_000);
    expect(await reload.check()).toBe('reloaded');
    const renewed = await loadOrCreateHubTls(dir, names, now);
    expect(fingerprint(renewed)).not.toBe(fingerprint(first));
    expect(await servedCertificate(port)).toBe(fingerprint(renewed));
    expect(log.infos).toEqual(['serving a new TLS certificate from now on']);
    // Read again, the same files: nothing to do.
    expect(await reload.check()).toBe('unchanged');
  });

  it('never serves a certificate under another root CA (agents pinned the first), and says so once', async () => {
    const first = await loadOrCreateHubTls(path.join(await tempDir(), 'tls'), names);
    const other = await loadOrCreateHubTls(path.join(await tempDir(), 'tls'), names);
    const { server, port } = await serve(first);
    const log = recordingLogger();
    const reload = new CertificateReload({ load: async () => other, apply: (next) => server.setSecureContext({ key: next.key, cert: next.cert }), current: first, logger: log.logger });
    expect(await reload.check()).toBe('refused');
    expect(await reload.check()).toBe('refused');
    expect(await servedCertificate(port)).toBe(fingerprint(first));
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0]).toContain(other.caFingerprint);
    expect(log.errors[0]).toContain(first.caFingerprint);
  });

  it('keeps serving the current certificate when the new one cannot be read or used', async () => {
    const first = await loadOrCreateHubTls(path.join(await tempDir(), 'tls'), names);
    const { server, port } = await serve(first);
    const log = recordingLogger();
    let load = async (): Promise<HubTls> => {
      throw new Error('server.key: no such file');
    };
    const reload = new CertificateReload({ load: () => load(), apply: (next) => server.setSecureContext({ key: next.key, cert: next.cert }), current: first, logger: log.logger });
    expect(await reload.check()).toBe('failed');
    // A key that is not the certificate's: the TLS layer refuses it.
    load = async () => ({ ...first, key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' });
    expect(await reload.check()).toBe('failed');
    expect(await servedCertificate(port)).toBe(fingerprint(first));
    expect(log.errors).toHaveLength(2);
    expect(log.errors[0]).toContain('no such file');
  });
});
