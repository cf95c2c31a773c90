/**
 * A store file that cannot be trusted (empty, truncated, zero-filled, a wrong checksum, not the
 * records it should hold): the hub must not start without its records, or the services in it
 * would vanish and their containers be removed. Carries what the operator needs to decide: the
 * file, what is wrong with it, and whether its previous copy (`<file>.prev`) can replace it.
 */
export interface PreviousCopy {
  file: string;
  /** good: checked and whole; damaged: present but not trustworthy either; missing: none kept. */
  state: 'good' | 'damaged' | 'missing';
  /** What is wrong with it when damaged. */
  reason: string | null;
  /** When it was written (its mtime), when present. */
  writtenAtMs: number | null;
}

/**
 * Where a damaged change log can be cut (see change-log.ts): the bytes of the whole lines before
 * its first bad one, and how many lines it keeps and drops.
 */
export interface LogCut {
  validBytes: number;
  keptLines: number;
  droppedLines: number;
}

/** How a reason starts when the file is of a format this version does not know. */
export const UNKNOWN_FORMAT = 'unknown format version';

export class StoreFileDamagedError extends Error {
  readonly code = 'store_file_damaged';

  constructor(
    readonly file: string,
    readonly reason: string,
    readonly previous: PreviousCopy,
    /** A change log damaged after its first lines: where --recover cuts it. */
    readonly cut: LogCut | null = null,
  ) {
    super(`store file ${file} is damaged (${reason})`);
    this.name = 'StoreFileDamagedError';
  }

  /** Whether --recover restores it (its previous copy is good, or it is a log it can cut), and it is not of a newer format. */
  get restorable(): boolean {
    return (this.previous.state === 'good' || this.cut !== null) && !this.reason.startsWith(UNKNOWN_FORMAT);
  }

  /** One line for the operator: the file, what is wrong, and what to do. */
  advice(nowMs = Date.now()): string {
    const prev = this.previous;
    // Not damage but a downgrade: moving the file aside or restoring an older copy would lose
    // what the newer version wrote.
    if (this.reason.startsWith(UNKNOWN_FORMAT)) {
      return `store file ${this.file} was written by a newer version of Tether (${this.reason}): run that version again`;
    }
    if (prev.state === 'good') {
      return (
        `${this.message}; its previous copy ${prev.file} is good (written ${ageText(nowMs - (prev.writtenAtMs ?? nowMs))} ago): ` +
        `start with --recover to restore it, or move both aside to start without the records they hold`
      );
    }
    if (this.cut !== null) {
      const { keptLines, droppedLines } = this.cut;
      return (
        `${this.message}: start with --recover to cut it at its first bad line (keeping the ${keptLines} line${keptLines === 1 ? '' : 's'} before it, ` +
        `the writes since then are lost: ${droppedLines} dropped; the whole file is kept as ${this.file}.damaged), or restore it from a backup`
      );
    }
    const why = prev.state === 'missing' ? 'none was kept' : `${prev.file} is damaged too (${prev.reason})`;
    return (
      `${this.message} and has no good previous copy (${why}): restore it from a backup, ` +
      `or move it${prev.state === 'missing' ? '' : ' and its previous copy'} aside to start without the records it holds`
    );
  }
}

/** Every damaged file of a store, found at open: the start stops on all of them at once. */
export class StoreDamagedError extends Error {
  readonly code = 'store_damaged';

  constructor(readonly files: StoreFileDamagedError[]) {
    super(files.map((f) => f.message).join('; '));
    this.name = 'StoreDamagedError';
  }
}

/** "40 s", "12 min", "3 h", "2 d": an age to read at a glance. */
export function ageText(ageMs: number): string {
  const s = Math.max(0, Math.round(ageMs / 1000));
  if (s < 120) return `${s} s`;
  if (s < 2 * 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86_400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}
