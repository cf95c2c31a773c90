import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileAuditLog } from '../../hub/audit/audit-log.js';
import type { AuditRecord } from '../../hub/audit/audit-record.js';

let dir: string;
const logs: FileAuditLog[] = [];
let warned: Array<{ obj: object; msg: string }>;
let told: Array<{ obj: object; msg: string }>;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-audit-log-'));
  warned = [];
  told = [];
});
afterEach(async () => {
  await Promise.allSettled(logs.splice(0).map((l) => l.close()));
  await rm(dir, { recursive: true, force: true });
});

const logger = { warn: (obj: object, msg: string) => warned.push({ obj, msg }), info: (obj: object, msg: string) => told.push({ obj, msg }) };

function open(opts: Partial<ConstructorParameters<typeof FileAuditLog>[1]> = {}): FileAuditLog {
  const log = new FileAuditLog(path.join(dir, 'audit'), { logger, ...opts });
  logs.push(log);
  return log;
}

function record(n: number, extra: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: new Date(Date.parse('2026-05-01T00:00:00.000Z') + n * 1000).toISOString(),
    token: { id: '0123456789abcdef', name: 'ci', role: 'operator' },
    remoteAddress: '10.0.0.7',
    method: 'PUT',
    route: '/v1/services/:name',
    target: { name: `svc-${n}` },
    status: 201,
    ...extra,
  };
}

const file = (name = 'audit.log') => path.join(dir, 'audit', name);
const linesOf = async (name = 'audit.log') => (await readFile(file(name), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord);

describe('FileAuditLog', () => {
  it('appends one JSON line per record, in a private dir and file', async () => {
    const log = open();
    log.record(record(1));
    log.record(record(2, { token: null, status: 401 }));
    await log.flush();
    expect(await linesOf()).toEqual([record(1), record(2, { token: null, status: 401 })]);
    expect((await stat(file())).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, 'audit'))).mode & 0o777).toBe(0o700);
    expect(log.stats()).toEqual({ written: 2, dropped: 0, failed: 0 });
  });

  it('goes on after the records a previous run wrote, and narrows a file others could read', async () => {
    const first = open();
    first.record(record(1));
    await first.close();
    const { chmod } = await import('node:fs/promises');
    await chmod(file(), 0o644);
    const second = open();
    second.record(record(2));
    await second.flush();
    expect((await linesOf()).map((r) => r.target.name)).toEqual(['svc-1', 'svc-2']);
    expect((await stat(file())).mode & 0o777).toBe(0o600);
  });

  it('rotates at the size bound and keeps that many files', async () => {
    const lineBytes = Buffer.byteLength(`${JSON.stringify(record(100))}\n`);
    const log = open({ maxFileBytes: lineBytes * 10, keepFiles: 3 });
    // 35 records: 10 a file, so three rotations; the oldest file goes.
    for (let n = 100; n < 135; n++) {
      log.record(record(n));
      if (n % 7 === 0) await log.flush();
    }
    await log.flush();
    expect((await readdir(path.join(dir, 'audit'))).sort()).toEqual(['audit.log', 'audit.log.1', 'audit.log.2']);
    for (const name of ['audit.log', 'audit.log.1', 'audit.log.2']) expect((await stat(file(name))).size).toBeLessThanOrEqual(lineBytes * 10);
    const kept = [...(await linesOf('audit.log.2')), ...(await linesOf('audit.log.1')), ...(await linesOf())].map((r) => r.target.name);
    expect(kept).toEqual(Array.from({ length: 25 }, (_, i) => `svc-${110 + i}`));
    for (const name of ['audit.log', 'audit.log.1', 'audit.log.2']) expect((await stat(file(name))).mode & 0o777).toBe(0o600);
  });

  it('reads the newest records back across rotated files, since a time, at most a limit', async () => {
    const lineBytes = Buffer.byteLength(`${JSON.stringify(record(100))}\n`);
    const log = open({ maxFileBytes: lineBytes * 4, keepFiles: 3 });
    for (let n = 100; n < 110; n++) log.record(record(n));
    const newest = await log.read({ sinceMs: null, limit: 3 });
    expect(newest.records.map((r) => r.target.name)).toEqual(['svc-107', 'svc-108', 'svc-109']);
    expect(newest.more).toBe(true);
    const since = await log.read({ sinceMs: Date.parse(record(103).time), limit: 100 });
    expect(since.records.map((r) => r.target.name)).toEqual(['svc-103', 'svc-104', 'svc-105', 'svc-106', 'svc-107', 'svc-108', 'svc-109']);
    expect(since.more).toBe(false);
  });

  it('skips a torn last line (a crash mid-write) when reading', async () => {
    const log = open();
    log.record(record(1));
    await log.flush();
    await writeFile(file(), '{"time":"2026-05-01T00:', { flag: 'a' });
    const read = await log.read({ sinceMs: null, limit: 10 });
    expect(read.records).toEqual([record(1)]);
  });

  it('bounds the queue: records past it are dropped and counted, the caller never waits', async () => {
    const log = open({ maxQueued: 5 });
    for (let n = 0; n < 20; n++) log.record(record(n));
    await log.flush();
    expect(log.stats()).toEqual({ written: 5, dropped: 15, failed: 0 });
    expect(warned.filter((w) => /dropped/.test(w.msg))).toHaveLength(1);
    expect(await linesOf()).toHaveLength(5);
  });

  it('counts records it cannot write, warns once per burst, and says when it writes again', async () => {
    // The audit dir cannot be made: a file sits where it goes.
    await writeFile(path.join(dir, 'audit'), 'in the way');
    const log = open();
    for (let n = 0; n < 3; n++) {
      log.record(record(n));
      await log.flush();
    }
    expect(log.stats()).toEqual({ written: 0, dropped: 0, failed: 3 });
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toMatch(/cannot write the audit log/);
    await rm(path.join(dir, 'audit'));
    log.record(record(9));
    await log.flush();
    expect(log.stats()).toEqual({ written: 1, dropped: 0, failed: 3 });
    expect(told.some((t) => /writes again/.test(t.msg) && (t.obj as { lost: number }).lost === 3)).toBe(true);
    expect(await linesOf()).toEqual([record(9)]);
  });
});
