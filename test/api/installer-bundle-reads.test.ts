/**
 * Devices that download the agent bundle at once (a fleet installed by a script) share one read
 * of it: each read holds a copy of the bundle (MiBs) in the hub's memory until it is served.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerErrorHandling } from '../../hub/http/errors.js';
import { installerRoutes } from '../../hub/http/installer.js';

const reads = vi.hoisted(() => ({ files: [] as string[] }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const readFile = ((file: string, ...rest: unknown[]) => {
    reads.files.push(String(file));
    return (fs.readFile as (...args: unknown[]) => Promise<unknown>)(file, ...rest);
  }) as typeof fs.readFile;
  return { ...fs, default: { ...fs, readFile }, readFile };
});

describe('the agent bundle asked for by many devices at once', () => {
  let dir = '';
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is read once, and every device gets it', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-installer-reads-'));
    const bundle = path.join(dir, 'tether-agent.js');
    const bytes = Buffer.from('#!/usr/bin/env node\nconsole.log("agent");\n'.repeat(1000));
    await writeFile(bundle, bytes);
    await writeFile(`${bundle}.sha256`, `${createHash('sha256').update(bytes).digest('hex')}  tether-agent.js\n`);
    const app = Fastify();
    registerErrorHandling(app);
    await app.register(installerRoutes, { installScript: null, agentBundle: bundle });
    try {
      reads.files.length = 0;
      const answers = await Promise.all(Array.from({ length: 20 }, () => app.inject({ method: 'GET', url: '/agent/tether-agent.js' })));
      for (const res of answers) {
        expect(res.statusCode).toBe(200);
        expect(res.rawPayload.equals(bytes)).toBe(true);
      }
      expect(reads.files.filter((f) => f === bundle)).toHaveLength(1);
    } finally {
      await app.close();
    }
  });
});
