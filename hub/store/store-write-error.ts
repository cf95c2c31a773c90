/**
 * A store file could not be written (disk full, read-only filesystem, I/O error). Carries the
 * errno code and the file so that the HTTP layer can say which, and the operator can act.
 */
export class StoreWriteError extends Error {
  readonly code: string;

  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | null)?.code ?? 'EUNKNOWN';
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot write ${file}: ${reason}`, { cause });
    this.name = 'StoreWriteError';
    this.code = code;
  }

  /** ENOSPC (and EDQUOT, a quota reached): the data directory is full. */
  get diskFull(): boolean {
    return this.code === 'ENOSPC' || this.code === 'EDQUOT';
  }
}

/** Whether the store's writes work: the last write failed since `since`, or all is well. */
export interface StoreHealth {
  ok: boolean;
  error: string | null;
  since: string | null;
  writeFailures: number;
}

/** Shared by the collections of one store: the outcome of its latest file write. */
export class StoreHealthTracker {
  private failure: { error: string; since: string } | null = null;
  writeFailures = 0;

  failed(error: StoreWriteError): void {
    this.writeFailures++;
    this.failure = { error: error.message, since: this.failure?.since ?? new Date().toISOString() };
  }

  succeeded(): void {
    this.failure = null;
  }

  get(): StoreHealth {
    return { ok: this.failure === null, error: this.failure?.error ?? null, since: this.failure?.since ?? null, writeFailures: this.writeFailures };
  }
}
