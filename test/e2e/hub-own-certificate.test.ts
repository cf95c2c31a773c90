/**
 * The operator's own certificate (`--tls-cert`, `--tls-key`), end to end: the hub serves it and
 * prints its root's fingerprint, an agent pins that root, and files replaced while the hub runs
 * are served after SIGHUP, unless they are under another root.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { createCa, issueServerCertificate, pemCertificates, serverNames } from '../../hub/tls/hub-certificates.js';
import { cleanupNode, describeDocker } from '../helpers/docker.js';
import { startProgram, stopProgram, type Proc } from '../helpers/processes.js';
import { httpsApi, servedCertificate } from '../helpers/https-api.js';
import { freePort } from '../helpers/test-ports.js';

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
    const joinToken = (await httpsApi(url, ca.certPem, token, 'POST', '/v1/join-tokens', {})).body.token as string;
    agent = startProgram('agent', ['--hub', url, '--join-token', joinToken, '--ca-fingerprint', fingerprint, '--data-dir', path.join(dir, 'agent'), '--name', `own-cert-${process.pid}`]);
    await vi.waitFor(
      async () => {
        const nodes = (await httpsApi(url, ca.certPem, token, 'GET', '/v1/nodes')).body.nodes as Array<{ id: string; state: string }>;
        expect(nodes.map((n) => n.state)).toEqual(['ready']);
        nodeId = nodes[0]!.id;
      },
      { timeout: 30_000, interval: 200 },
    );

    // A renewal under the same root: served to new connections once the hub is told.
    const renewed = await writeCertificate(ca);
    proc.child.kill('SIGHUP');
    await vi.waitFor(async () => expect(await servedCertificate(port)).toBe(leafFingerprint(renewed)), { timeout: 10_000, interval: 100 });
    // The line reaches us through the hub's log stream and our pipe, which may trail the swap itself.
    await vi.waitFor(() => expect(proc.output()).toContain('serving a new TLS certificate from now on'), { timeout: 10_000, interval: 100 });
    expect((await httpsApi(url, ca.certPem, token, 'GET', '/healthz')).status).toBe(200);

    // Under another root: every agent would refuse the hub, so it keeps serving the renewed one.
    const otherRoot = createCa();
    await writeCertificate(otherRoot);
    proc.child.kill('SIGHUP');
    await vi.waitFor(() => expect(proc.output()).toContain('is under another root CA'), { timeout: 10_000, interval: 100 });
    expect(await servedCertificate(port)).toBe(leafFingerprint(renewed));
    expect(proc.child.exitCode).toBeNull();
    // The agent, pinned to the first root, is still connected.
    const nodes = (await httpsApi(url, ca.certPem, token, 'GET', '/v1/nodes')).body.nodes as Array<{ state: string }>;
    expect(nodes.map((n) => n.state)).toEqual(['ready']);
  });
});
