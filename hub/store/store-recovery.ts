import { copyFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ageText, type StoreFileDamagedError } from './store-file-damaged.js';

/** What a restore did, for the log: which file, from which copy, how old that copy is. */
export interface Restored {
  file: string;
  from: string;
  writtenAtMs: number | null;
  /** Where the damaged file was set aside (null when it was missing). */
  keptAs: string | null;
}

/**
 * Replaces each damaged file by its good previous copy (`tether-hub --recover`). Only called when
 * every damaged file has one: a file with none is the operator's to decide on, never dropped here.
 * The damaged file is kept as `<file>.damaged` for inspection (the newest one only); the copy goes
 * through a temp file renamed into place, so a crash midway leaves the damaged file, never a torn one.
 */
export async function restoreFromPrevious(damaged: readonly StoreFileDamagedError[]): Promise<Restored[]> {
  const unrestorable = damaged.filter((d) => !d.restorable);
  if (unrestorable.length > 0) throw new Error(`no good previous copy of ${unrestorable.map((d) => d.file).join(', ')}`);
  const restored: Restored[] = [];
  for (const d of damaged) {
    const temp = path.join(path.dirname(d.file), `.${path.basename(d.file)}.restore`);
    await copyFile(d.previous.file, temp);
    const keptAs = `${d.file}.damaged`;
    const setAside = await rename(d.file, keptAs).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
    await rename(temp, d.file).catch(async (error: unknown) => {
      await unlink(temp).catch(() => undefined);
      throw error;
    });
    restored.push({ file: d.file, from: d.previous.file, writtenAtMs: d.previous.writtenAtMs, keptAs: setAside ? keptAs : null });
  }
  return restored;
}

/** One log line per restored file. */
export function restoredText(r: Restored, nowMs = Date.now()): string {
  const age = r.writtenAtMs === null ? '' : ` (written ${ageText(nowMs - r.writtenAtMs)} ago)`;
  const kept = r.keptAs === null ? ' (the file was missing)' : `; the damaged file is kept as ${r.keptAs}`;
  return `restored store file ${r.file} from its previous copy ${r.from}${age}${kept}`;
}
