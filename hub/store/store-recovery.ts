import { copyFile, link, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { changeLogOf, readLogBase } from './change-log.js';
import { previousCopyOf, readChecked } from './checked-file.js';
import { ageText, type LogCut, type StoreFileDamagedError } from './store-file-damaged.js';

/** What a restore did, for the log: which file, from which copy, how old that copy is. */
export interface Restored {
  file: string;
  /** The copy it was restored from; null for a log cut at its first bad line. */
  from: string | null;
  writtenAtMs: number | null;
  /** Where the damaged file was kept (null when it was missing). */
  keptAs: string | null;
  /** A shard's change log, set aside: it was not written on the copy restored. */
  logSetAside: string | null;
  /**
   * The log written on the copy restored, which goes with it: the current log (a crash or a failed
   * write came before it was set aside) or the one kept as `<log>.prev`; null when neither was.
   */
  logFrom: string | null;
  /** A log cut at its first bad line: how many lines it kept and dropped. */
  cut: LogCut | null;
}

/**
 * Replaces each damaged file by its good previous copy (`tether-hub --recover`). Only called when
 * every damaged file has one: a file with none is the operator's to decide on, never dropped here.
 * The damaged file is kept as `<file>.damaged` for inspection (the newest one only).
 *
 * A shard restored from `.prev` takes the change log written on that copy, found by the checksum its
 * header names: usually the one kept as `<log>.prev` when the shard was last written whole, but the
 * current log when a crash (or a failed write) came before it was set aside. Together they are the
 * state just before that write; the writes since are lost. Any other current log is set aside as
 * `<log>.unapplied` (numbered, so that a second recovery keeps the first's), and when no log of that
 * copy is found the output says so. A damaged log is cut at its first bad line, the whole file kept
 * as `<log>.damaged`: each line is one whole write, so the lines before it are a state that existed.
 *
 * A crash midway must never leave a state that loads without complaint but lacks what it should
 * hold: the log goes in before its shard (until the shard is restored the start still stops and
 * --recover runs again), and a file is replaced by renaming a synced temp over it after keeping it
 * under its other name by a link, so that its own name never goes missing.
 */
export async function restoreFromPrevious(damaged: readonly StoreFileDamagedError[]): Promise<Restored[]> {
  const unrestorable = damaged.filter((d) => !d.restorable);
  if (unrestorable.length > 0) throw new Error(`no good previous copy of ${unrestorable.map((d) => d.file).join(', ')}`);
  const restored: Restored[] = [];
  const logsReplaced = new Set<string>();
  for (const d of damaged) {
    if (d.cut !== null) continue;
    let logSetAside: string | null = null;
    let logFrom: string | null = null;
    if (d.file.endsWith('.json')) {
      const log = changeLogOf(d.file);
      const prev = await readChecked(d.previous.file, null);
      const base = prev?.ok ? prev.checksum : null;
      if (base !== null && (await readLogBase(log)) === base) {
        // The current log was written on that copy: it stays (cut later if it is damaged).
        logFrom = log;
      } else {
        logsReplaced.add(log);
        const unapplied = await freeName(`${log}.unapplied`);
        if (base !== null && (await readLogBase(previousCopyOf(log))) === base) {
          logSetAside = await replaceFrom(log, previousCopyOf(log), unapplied);
          logFrom = previousCopyOf(log);
        } else {
          logSetAside = await setAside(log, unapplied);
        }
      }
    }
    const keptAs = await replaceFrom(d.file, d.previous.file, `${d.file}.damaged`);
    restored.push({ file: d.file, from: d.previous.file, writtenAtMs: d.previous.writtenAtMs, keptAs, logSetAside, logFrom, cut: null });
  }
  for (const d of damaged) {
    // A log whose shard was restored above was replaced with it.
    if (d.cut === null || logsReplaced.has(d.file)) continue;
    const temp = tempOf(d.file);
    await copyHead(d.file, temp, d.cut.validBytes);
    const keptAs = await keepAs(d.file, `${d.file}.damaged`);
    await renameOver(temp, d.file);
    restored.push({ file: d.file, from: null, writtenAtMs: null, keptAs, logSetAside: null, logFrom: null, cut: d.cut });
  }
  return restored;
}

/** Puts a copy of `from` in place of `file`, which is kept as `keptAs` (returned; null when missing). */
async function replaceFrom(file: string, from: string, keptAs: string): Promise<string | null> {
  const temp = tempOf(file);
  await copyFile(from, temp);
  await syncFile(temp);
  const kept = await keepAs(file, keptAs);
  await renameOver(temp, file);
  return kept;
}

async function renameOver(temp: string, file: string): Promise<void> {
  await rename(temp, file).catch(async (error: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw error;
  });
}

/** Moves `file` to `keptAs` (returned; null when it was missing). */
async function setAside(file: string, keptAs: string): Promise<string | null> {
  return rename(file, keptAs).then(
    () => keptAs,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    },
  );
}

/** Keeps `file` also as `keptAs` (a link, else a copy), leaving it in place (returned; null when missing). */
async function keepAs(file: string, keptAs: string): Promise<string | null> {
  await unlink(keptAs).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  try {
    await link(file, keptAs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw error;
    await copyFile(file, keptAs);
  }
  return keptAs;
}

/** `name`, or `name.1`, `name.2`...: the first that is free. */
async function freeName(name: string): Promise<string> {
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? name : `${name}.${n}`;
    if (!(await exists(candidate))) return candidate;
  }
}

const tempOf = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.restore`);

const exists = (file: string) =>
  open(file, 'r').then(
    async (handle) => {
      await handle.close();
      return true;
    },
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );

async function syncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

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
    r.logFrom === null
      ? r.logSetAside !== null
        ? ' (no change log written on that copy was found)'
        : ''
      : r.logFrom.endsWith('.prev')
        ? `, with the change log kept with it (${r.logFrom})`
        : `, with its current change log ${r.logFrom}, which was written on that copy`;
  const aside = r.logSetAside === null ? '' : `; the change log written since, not applied, is set aside as ${r.logSetAside}`;
  return `restored store file ${r.file} from its previous copy ${r.from}${log}${age}${kept}${aside}; writes since that copy are lost`;
}
