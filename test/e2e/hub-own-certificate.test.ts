/**
 * The operator's own certificate (`--tls-cert`, `--tls-key`), end to end: the hub serves it and
 * prints its root's fingerprint, an agent pins that root, and files replaced while the hub runs
 * are served after SIGHUP, unless they are under another root.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { createCa, issueServerCertificate, pemCertificates, serverNames } from '../../hub/tls/hub-certificates.js';
import { cleanupNode, describeDocker } from '../helpers/docker.js';
import { startProgram, stopProgram, type Proc } from '../helpers/processes.js';
import { freePort } from '../helpers/test-ports.js';

function getJson(url: string, caPem: string, token: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { ca: caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      res.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

/** The server certificate a new TLS connection is served. */
function servedCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

const leafFingerprint = (certPem: string) => new X509Certificate(pemCertificates(certPem)[0]!).fingerprint256;

describeDocker("the operator's own certificate, end to end", () => {
  let dir = '';
  let port = 0;
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  let nodeId = '';
  const names = serverNames('127.0.0.1', [], 'edge-hub');
  const ca = createCa();
  const certFile = () => path.join(dir, 'server-chain.pem');
  const keyFile = () => path.join(dir, 'server.key');

  /** Writes a server certificate (and its chain) and key as an operator's renewal tool would: each file replaced whole. */
  const writeCertificate = async (issuer: { certPem: string; keyPem: string }) => {
    const issued = issueServerCertificate(issuer, names);
    const chain = `${issued.certPem.trimEnd()}\n${issuer.certPem.trimEnd()}\n`;
    await writeFile(`${keyFile()}.new`, issued.keyPem, { mode: 0o600 });
    await writeFile(`${certFile()}.new`, chain);
    await rename(`${keyFile()}.new`, keyFile());
    await rename(`${certFile()}.new`, certFile());
    return chain;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-own-cert-'));
    port = await freePort();
  });

  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    await rm(dir, { recursive: true, force: true });
  });

  it('serves it, an agent pins its root, and a renewal is served after SIGHUP while one under another root is not', async () => {
    const first = await writeCertificate(ca);
    const url = `https://127.0.0.1:${port}`;
    const dataDir = path.join(dir, 'hub');
    hub = startProgram('hub', ['--port', String(port), '--data-dir', dataDir, '--tls-cert', certFile(), '--tls-key', keyFile()]);
    const proc = hub;
    await vi.waitFor(() => expect(proc.output()).toContain(`is listening on ${url}\n`), { timeout: 30_000, interval: 100 });
    const fingerprint = caFingerprint(ca.certPem);
    expect(proc.output()).toContain(`--ca-fingerprint ${fingerprint}`);
    expect(await servedCertificate(port)).toBe(leafFingerprint(first));

    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const joinToken = await new Promise<string>((resolve, reject) => {
      const request = https.request(`${url}/v1/join-tokens`, { method: 'POST', ca: ca.certPem, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(JSON.parse(text).token));
      });
      request.on('error', reject);
      request.end('{}');
    });
    agent = startProgram('agent', ['--hub', url, '--join-token', joinToken, '--ca-fingerprint', fingerprint, '--data-dir', path.join(dir, 'agent'), '--name', `own-cert-${process.pid}`]);
    await vi.waitFor(
      async () => {
        const nodes = (await getJson(`${url}/v1/nodes`, ca.certPem, token)).body.nodes as Array<{ id: string; state: string }>;
        expect(nodes.map((n) => n.state)).toEqual(['ready']);
        nodeId = nodes[0]!.id;
      },
      { timeout: 30_000, interval: 200 },
    );

    // A renewal under the same root: served to new connections once the hub is told.
    const renewed = await writeCertificate(ca);
    proc.child.kill('SIGHUP');
    await vi.waitFor(async () => expect(await servedCertificate(port)).toBe(leafFingerprint(renewed)), { timeout: 10_000, interval: 100 });
    expect(proc.output()).toContain('serving a new TLS certificate from now on');
    expect((await getJson(`${url}/healthz`, ca.certPem, token)).status).toBe(200);

    // Under another root: every agent would refuse the hub, so it keeps serving the renewed one.
    const otherRoot = createCa();
    await writeCertificate(otherRoot);
    proc.child.kill('SIGHUP');
    await vi.waitFor(() => expect(proc.output()).toContain('is under another root CA'), { timeout: 10_000, interval: 100 });
    expect(await servedCertificate(port)).toBe(leafFingerprint(renewed));
    expect(proc.child.exitCode).toBeNull();
    // The agent, pinned to the first root, is still connected.
    const nodes = (await getJson(`${url}/v1/nodes`, ca.certPem, token)).body.nodes as Array<{ state: string }>;
    expect(nodes.map((n) => n.state)).toEqual(['ready']);
  });
});
