import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { loadOrCreateHubTls, pemCertificates, serverNames } from '../../hub/tls/hub-certificates.js';
import { serverKeyPin } from '../../hub/tls/server-key-pin.js';

const TOKEN = 'tat_admin-for-tls';
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function hubWith(tls: boolean) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-join-ca-'));
  dirs.push(dir);
  const store = new LowdbStore({ dir: path.join(dir, 'store') });
  await store.open();
  const material = tls ? await loadOrCreateHubTls(path.join(dir, 'tls'), serverNames('127.0.0.1', [])) : undefined;
  const { app } = await buildHub({ store, adminToken: TOKEN, ...(material ? { tls: material } : {}) });
  closers.push(() => app.close());
  return { app, material };
}

describe("a join token carries the hub's CA fingerprint", () => {
  it('over HTTPS: POST /v1/join-tokens answers it, and the hub serves the certificate it names', async () => {
    const { app, material } = await hubWith(true);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const caPem = pemCertificates(material!.cert)[1]!;
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = https.request(
        { host: '127.0.0.1', port, path: '/v1/join-tokens', method: 'POST', ca: caPem, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } },
        (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end('{}');
    });
    expect(answer.status).toBe(201);
    const body = JSON.parse(answer.body) as { token: string; caFingerprint: string; installCommand: string };
    expect(body.token).toBeTruthy();
    expect(body.caFingerprint).toBe(material!.caFingerprint);
    // The install line pins the key of the certificate served, and hands the CA's fingerprint on.
    expect(body.installCommand).toBe(
      `curl -fsSL --insecure --pinnedpubkey ${serverKeyPin(material!.key)} https://127.0.0.1:${port}/install.sh | ` +
        `sh -s -- --hub https://127.0.0.1:${port} --join-token ${body.token} --ca-fingerprint ${material!.caFingerprint}`,
    );
  });

  it('over plain HTTP (--insecure-http) there is none to give', async () => {
    const { app } = await hubWith(false);
    const res = await app.inject({ method: 'POST', url: '/v1/join-tokens', headers: { authorization: `Bearer ${TOKEN}` }, payload: {} });
    expect(res.statusCode).toBe(201);
    expect(res.json()).not.toHaveProperty('caFingerprint');
  });
});
