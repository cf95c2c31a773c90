import { chmod, mkdir } from 'node:fs/promises';

/**
 * Hub and agent data dirs hold credentials (node credentials, registry passwords, tokens): what
 * either process creates is readable by its own user alone, whatever umask it was started with.
 * Called first thing in each program's main, so that every later file write (lowdb's temp
 * files among them) is covered without each one naming a mode.
 */
export function restrictNewFiles(): void {
  process.umask(0o077);
}

/** Creates the dir (and its parents) 0700, and narrows it to 0700 if it existed with more. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}
