import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_RESTART_COUNTS_FILE_BYTES, RestartCountsFile } from '../../agent/restart-counts-file.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-restarts-file-'));
  dirs.push(dir);
  return dir;
}

function recordingLogger() {
  const warnings: Array<{ o: object; m: string }> = [];
  return { warnings, warn: (o: object, m: string) => warnings.push({ o, m }) };
}

const records = { r1: { restarts: 3, engineCounts: { c1: 1 }, lastSpecHash: 'h1' } };

describe('RestartCountsFile', () => {
  it('loads what it saved', async () => {
    const dir = await tempDir();
    const file = new RestartCountsFile(dir, recordingLogger());
    file.save(records);
    await file.flush();
    expect(await new RestartCountsFile(dir, recordingLogger()).load()).toEqual(records);
  });

  it('refuses a file larger than the bound, with a warning: the engine’s counts are the floor then', async () => {
    const dir = await tempDir();
    // Valid counts, padded past the bound with whitespace that JSON allows.
    const text = JSON.stringify({ version: 1, replicas: records });
    await writeFile(path.join(dir, 'restarts.json'), text + ' '.repeat(MAX_RESTART_COUNTS_FILE_BYTES));
    const logger = recordingLogger();
    expect(await new RestartCountsFile(dir, logger).load()).toBeNull();
    expect(logger.warnings.map((w) => w.m)).toEqual([expect.stringMatching(/too large/)]);
  });
});
