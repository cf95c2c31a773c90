import { afterEach, beforeEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LowdbStore } from '../../hub/store/lowdb-store.js';

/**
 * A fresh data dir for each test of a file, and the stores kept on it: closed and removed after
 * each test. Call once at the top level of a test file.
 */
export interface TempStores {
  readonly dir: string;
  /** Closed after the test, unless closed by closeAll or let go first. */
  keep(store: LowdbStore): LowdbStore;
  /** The store is closed by the test itself. */
  letGo(store: LowdbStore): void;
  /** Closes every store kept so far (a restart in the test). */
  closeAll(): Promise<void>;
}

export function tempStores(prefix: string): TempStores {
  let dir = '';
  const opened: LowdbStore[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    keep(store) {
      opened.push(store);
      return store;
    },
    letGo(store) {
      const at = opened.indexOf(store);
      if (at !== -1) opened.splice(at, 1);
    },
    async closeAll() {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    },
  };
}
