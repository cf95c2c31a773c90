import { access, copyFile, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { changeLogOf } from './change-log.js';
import { previousCopyOf } from './checked-file.js';
import { ageText, type LogCut, type StoreFileDamagedError } from './store-file-damaged.js';

/** What a restore did, for the log: which file, from which copy, how old that copy is. */
export interface Restored {
  file: string;
  /** The copy it was restored from; null for a log cut at its first bad line. */
  from: string | null;
  writtenAtMs: number | null;
  /** Where the damaged file was set aside (null when it was missing). */
  keptAs: string | null;
  /** A shard's change log, set aside: its lines go on a newer shard than the one restored. */
  logSetAside: string | null;
  /** The log kept with the restored copy (`<log>.prev`), restored with it. */
  logFrom: string | null;
  /** A log cut at its first bad line: how many lines it kept and dropped. */
  cut: LogCut | null;
}

/**
 * Replaces each damaged file by its good previous copy (`tether-hub --recover`). Only called when
 * every damaged file has one: a file with none is the operator's to decide on, never dropped here.
 * The damaged file is kept as `<file>.damaged` for inspection (the newest one only); the copy goes
 * through a temp file renamed into place, so a crash midway leaves the damaged file, never a torn one.
 *
 * A shard restored from `.prev` takes the change log kept with it (`<log>.prev`): together they are
 * the state just before the shard was last written whole, and the writes since then are lost. Its
 * current log is set aside as `<log>.unapplied` (it names a newer shard, so it would not be laid
 * over the restored one anyway). A damaged log is cut at its first bad line, the whole file kept
 * as `<log>.damaged`: each line is one whole write, so the lines before it are a state that existed.
 */
export async function restoreFromPrevious(damaged: readonly StoreFileDamagedError[]): Promise<Restored[]> {
  const unrestorable = damaged.filter((d) => !d.restorable);
  if (unrestorable.length > 0) throw new Error(`no good previous copy of ${unrestorable.map((d) => d.file).join(', ')}`);
  const restored: Restored[] = [];
  const logsReplaced = new Set<string>();
  for (const d of damaged) {
    if (d.cut !== null) continue;
    const keptAs = await replaceFrom(d.file, d.previous.file, `${d.file}.damaged`);
    let logSetAside: string | null = null;
    let logFrom: string | null = null;
    if (d.file.endsWith('.json')) {
      const log = changeLogOf(d.file);
      logsReplaced.add(log);
      if (await exists(previousCopyOf(log))) {
        logSetAside = await replaceFrom(log, previousCopyOf(log), `${log}.unapplied`);
        logFrom = previousCopyOf(log);
      } else {
        logSetAside = await setAside(log, `${log}.unapplied`);
      }
    }
    restored.push({ file: d.file, from: d.previous.file, writtenAtMs: d.previous.writtenAtMs, keptAs, logSetAside, logFrom, cut: null });
  }
  for (const d of damaged) {
    // A log whose shard was restored above was replaced with it.
    if (d.cut === null || logsReplaced.has(d.file)) continue;
    const temp = tempOf(d.file);
    await copyHead(d.file, temp, d.cut.validBytes);
    const keptAs = await setAside(d.file, `${d.file}.damaged`);
    await rename(temp, d.file).catch(async (error: unknown) => {
      await unlink(temp).catch(() => undefined);
      throw error;
    });
    restored.push({ file: d.file, from: null, writtenAtMs: null, keptAs, logSetAside: null, logFrom: null, cut: d.cut });
  }
  return restored;
}

/** Puts a copy of `from` in place of `file`, which is set aside as `keptAs` (returned; null when missing). */
async function replaceFrom(file: string, from: string, keptAs: string): Promise<string | null> {
  const temp = tempOf(file);
  await copyFile(from, temp);
  const setAsideAs = await setAside(file, keptAs);
  await rename(temp, file).catch(async (error: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw error;
  });
  return setAsideAs;
}

async function setAside(file: string, keptAs: string): Promise<string | null> {
  return rename(file, keptAs).then(
    () => keptAs,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    },
  );
}

const tempOf = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.restore`);

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** Copies the first `bytes` of `file` to `to`. */
async function copyHead(file: string, to: string, bytes: number): Promise<void> {
  const source = await open(file, 'r');
  try {
    const head = Buffer.alloc(bytes);
    const { bytesRead } = await source.read(head, 0, bytes, 0);
    const target = await open(to, 'w', 0o600);
    try {
      await target.writeFile(head.subarray(0, bytesRead));
      await target.sync();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/** One log line per restored file. */
export function restoredText(r: Restored, nowMs = Date.now()): string {
  if (r.cut !== null) {
    const { keptLines, droppedLines } = r.cut;
    return (
      `cut store file ${r.file} at its first bad line: kept ${keptLines}, dropped ${droppedLines} of ${keptLines + droppedLines} lines ` +
      `(the writes they held are lost); the whole file is kept as ${r.keptAs ?? '(missing)'}`
    );
  }
  const age = r.writtenAtMs === null ? '' : ` (written ${ageText(nowMs - r.writtenAtMs)} ago)`;
  const kept = r.keptAs === null ? ' (the file was missing)' : `; the damaged file is kept as ${r.keptAs}`;
  const log =
    r.logFrom !== null ? `, with the change log kept with it (${r.logFrom})` : r.logSetAside !== null ? ' (no change log was kept with it)' : '';
  const aside = r.logSetAside === null ? '' : `; the change log written since, not applied, is set aside as ${r.logSetAside}`;
  return `restored store file ${r.file} from its previous copy ${r.from}${log}${age}${kept}${aside}; writes since that copy are lost`;
}
