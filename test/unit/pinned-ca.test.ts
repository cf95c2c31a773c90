import { mkdtemp, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchPinnedCa, isCertificateError, loadPinnedCa, PinMismatchError, pinnedTlsOptions, presentedCaFingerprint, savePinnedCa } from '../../agent/tls/pinned-ca.js';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { loadOrCreateHubTls, pemCertificates, serverNames, type HubTls } from '../../hub/tls/hub-certificates.js';

let dir = '';
let hub: HubTls;
let other: HubTls;
let server: https.Server;
let url = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-pin-'));
  // Valid for no name the test connects with: the pin, not the name, is what is checked.
  hub = await loadOrCreateHubTls(path.join(dir, 'hub'), { dnsNames: ['hub.invalid'], ipAddresses: ['10.9.9.9'] });
  other = await loadOrCreateHubTls(path.join(dir, 'other'), serverNames('127.0.0.1', []));
  server = https.createServer({ key: hub.key, cert: hub.cert }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

function get(tls: object): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get(`${url}/`, { ...tls, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
    });
    request.on('error', reject);
  });
}

describe('pinning the hub CA at first contact', () => {
  it("finds the CA with the given fingerprint in the hub's chain, and connections pinned to it succeed whatever the name", async () => {
    const pem = await fetchPinnedCa(new URL(url), hub.caFingerprint);
    expect(caFingerprint(pem)).toBe(hub.caFingerprint);
    expect(await get(pinnedTlsOptions(pem))).toBe('ok');
  });

  it('refuses a hub whose chain has no CA with that fingerprint, naming both fingerprints', async () => {
    const error = await fetchPinnedCa(new URL(url), other.caFingerprint).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PinMismatchError);
    expect((error as Error).message).toContain(other.caFingerprint);
    expect((error as Error).message).toContain(hub.caFingerprint);
  });

  it('a connection pinned to another CA is refused with a certificate error, and the presented CA can be named', async () => {
    const wrongCa = pemCertificates(other.cert)[1]!;
    const error = await get(pinnedTlsOptions(wrongCa)).catch((e: unknown) => e);
    expect(isCertificateError(error)).toBe(true);
    expect(await presentedCaFingerprint(new URL(url))).toBe(hub.caFingerprint);
  });

  it('keeps the pinned CA next to the node identity, 0600', async () => {
    const agentDir = path.join(dir, 'agent');
    expect(await loadPinnedCa(agentDir)).toBeNull();
    const pem = pemCertificates(hub.cert)[1]!;
    await savePinnedCa(agentDir, pem);
    expect(await loadPinnedCa(agentDir)).toEqual({ pem, fingerprint: hub.caFingerprint });
    expect((await stat(path.join(agentDir, 'hub-ca.pem'))).mode & 0o777).toBe(0o600);
  });
});
