import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../../hub/http/errors.js';
import { installerRoutes } from '../../hub/http/installer.js';
import { apiHubPerTest } from '../helpers/api-hub.js';

const TOKEN = 'tat_admin-for-installer';

describe('what a device installs from, served by the hub', () => {
  const hub = apiHubPerTest('tether-installer-api-', TOKEN);

  it('serves the repo\'s install.sh without a credential', async () => {
    const res = await hub.app.inject({ method: 'GET', url: '/install.sh' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/x-shellscript/);
    expect(res.body).toBe(await readFile('install.sh', 'utf8'));
  });

  it('serves the built agent bundle and its checksum without a credential', async () => {
    const bundle = await hub.app.inject({ method: 'GET', url: '/agent/tether-agent.js' });
    const sum = await hub.app.inject({ method: 'GET', url: '/agent/tether-agent.js.sha256' });
    expect(bundle.statusCode).toBe(200);
    expect(bundle.body.startsWith('#!/usr/bin/env node')).toBe(true);
    expect(sum.statusCode).toBe(200);
    expect(sum.body).toBe(`${createHash('sha256').update(bundle.rawPayload).digest('hex')}  tether-agent.js\n`);
  });

  it('answers a join token with the one line that installs an agent with it', async () => {
    const res = await hub.call('POST', '/v1/join-tokens', {});
    expect(res.statusCode).toBe(201);
    const body = res.json() as { token: string; installCommand: string };
    expect(body.installCommand).toBe(`curl -fsSL http://localhost:80/install.sh | sh -s -- --hub http://localhost:80 --join-token ${body.token}`);
  });
});

describe('the installer routes without a build', () => {
  let dir = '';
  let app: FastifyInstance | null = null;
  afterEach(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(files: (dir: string) => { installScript: string | null; agentBundle: string }) {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-installer-'));
    app = Fastify();
    registerErrorHandling(app);
    await app.register(installerRoutes, files(dir));
    return app;
  }

  it('answer 503 naming the missing bundle, and 503 without an install.sh', async () => {
    const served = await serve(() => ({ installScript: null, agentBundle: '/nonexistent/dist/agent/tether-agent.js' }));
    for (const url of ['/agent/tether-agent.js', '/agent/tether-agent.js.sha256']) {
      const res = await served.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({ code: 'agent_bundle_missing', message: expect.stringContaining('npm run build') });
    }
    const script = await served.inject({ method: 'GET', url: '/install.sh' });
    expect(script.statusCode).toBe(503);
    expect(script.json().error.code).toBe('install_script_missing');
  });

  it('answer 503 while the bundle does not match its checksum (a build in progress), and serve it once it does', async () => {
    const served = await serve((d) => ({ installScript: null, agentBundle: path.join(d, 'tether-agent.js') }));
    const bundle = path.join(dir, 'tether-agent.js');
    await writeFile(bundle, '#!/usr/bin/env node\nnew build\n');
    await writeFile(`${bundle}.sha256`, `${'0'.repeat(64)}  tether-agent.js\n`);
    const changing = await served.inject({ method: 'GET', url: '/agent/tether-agent.js' });
    expect(changing.statusCode).toBe(503);
    expect(changing.json().error.code).toBe('agent_bundle_changing');
    const sum = createHash('sha256').update('#!/usr/bin/env node\nnew build\n').digest('hex');
    await writeFile(`${bundle}.sha256`, `${sum}  tether-agent.js\n`);
    const built = await served.inject({ method: 'GET', url: '/agent/tether-agent.js' });
    expect(built.statusCode).toBe(200);
    expect(built.body).toBe('#!/usr/bin/env node\nnew build\n');
  });
});
