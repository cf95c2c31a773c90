import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TargetCache } from '../../agent/target-cache.js';
import type { TargetFrame } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

const SECRET = 'correct horse battery staple';
const CONFIG = 'listen 8080';
const b64 = (s: string) => Buffer.from(s).toString('base64');

const target: TargetFrame = {
  type: 'target',
  generation: 7,
  replicas: [
    {
      replicaId: 'web-1',
      service: 'web',
      specHash: 'h1',
      container: containerSpec('busybox:1', {
        files: [{ source: 'secret', name: 'db', version: 2, target: '/run/secrets/db', mode: 0o444, uid: 0, gid: 0 }],
        envFrom: { SITE: { source: 'config', name: 'site', version: 1 } },
      }),
    },
  ],
  values: [
    { source: 'config', name: 'site', version: 1, data: b64(CONFIG) },
    { source: 'secret', name: 'db', version: 2, data: b64(SECRET) },
  ],
};

function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg: string }> = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-cache-secrets-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the target cache and secrets', () => {
  it('keeps secrets sealed on disk with a key of its own, and opens them at load', async () => {
    const { logger } = recordingLogger();
    await new TargetCache(dir, { logger }).save(target);
    const text = await readFile(path.join(dir, 'target.json'), 'utf8');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(b64(SECRET));
    const key = path.join(dir, 'cache.key');
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect(Buffer.from((await readFile(key, 'utf8')).trim(), 'base64')).toHaveLength(32);
    expect(text).not.toContain((await readFile(key, 'utf8')).trim());

    const loaded = await new TargetCache(dir, { logger }).load();
    expect(loaded?.generation).toBe(7);
    expect(loaded?.replicas).toEqual(target.replicas);
    expect(loaded?.values).toEqual(expect.arrayContaining(target.values!));
    expect(loaded?.values).toHaveLength(2);
  });

  it('drops a secret whose sealed bytes were changed, with an error naming it, never the bytes as they are', async () => {
    const { logger, lines } = recordingLogger();
    await new TargetCache(dir, { logger }).save(target);
    const file = path.join(dir, 'target.json');
    const cached = JSON.parse(await readFile(file, 'utf8'));
    const sealed = cached.sealedSecrets[0];
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    bytes[0] = bytes[0]! ^ 0x01;
    sealed.ciphertext = bytes.toString('base64');
    await writeFile(file, JSON.stringify(cached));

    const loaded = await new TargetCache(dir, { logger }).load();
    expect(loaded?.replicas).toEqual(target.replicas);
    expect(loaded?.values).toEqual([target.values![0]]);
    const error = lines.find((l) => l.level === 'error');
    expect(error?.msg).toMatch(/secret.*cannot be opened.*dropped/);
    expect(JSON.stringify(error)).toContain('db');
    expect(JSON.stringify(lines)).not.toContain(SECRET);
  });

  it('drops the secrets when the key is another one', async () => {
    const { logger, lines } = recordingLogger();
    await new TargetCache(dir, { logger }).save(target);
    await writeFile(path.join(dir, 'cache.key'), randomBytes(32).toString('base64'));
    const loaded = await new TargetCache(dir, { logger }).load();
    expect(loaded?.values).toEqual([target.values![0]]);
    expect(lines.some((l) => l.level === 'error' && /cannot be opened/.test(l.msg))).toBe(true);
  });

  it('writes no secret and no key with offline secrets off, and still caches the rest', async () => {
    const { logger } = recordingLogger();
    await new TargetCache(dir, { logger, offlineSecrets: false }).save(target);
    const text = await readFile(path.join(dir, 'target.json'), 'utf8');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(b64(SECRET));
    expect(await readdir(dir)).toEqual(['target.json']);
    const loaded = await new TargetCache(dir, { logger, offlineSecrets: false }).load();
    expect(loaded?.replicas).toEqual(target.replicas);
    expect(loaded?.values).toEqual([target.values![0]]);
  });

  it('reads a cache written as a bare target frame (an older agent)', async () => {
    const plain = { ...target, values: [target.values![0]!] };
    await writeFile(path.join(dir, 'target.json'), JSON.stringify(plain));
    expect(await new TargetCache(dir).load()).toEqual(plain);
  });
});
