import { execFile } from 'node:child_process';
import { statfs } from 'node:fs/promises';

/** statfs's f_type of a tmpfs (linux/magic.h): memory only, gone at power-off. */
export const TMPFS_MAGIC = 0x01021994;

/** How long `mount` may take before the agent gives up on it (it is local and instant when it works). */
const MOUNT_TIMEOUT_MS = 10_000;

/** Mounts a tmpfs of at most `sizeBytes` on `dir`, readable by root alone. */
export type MountTmpfs = (dir: string, sizeBytes: number) => Promise<void>;

export async function isTmpfs(dir: string): Promise<boolean> {
  return (await statfs(dir)).type === TMPFS_MAGIC;
}

/** `mount -t tmpfs` (root only); rejects with mount's own words. */
export const mountTmpfs: MountTmpfs = (dir, sizeBytes) =>
  new Promise((resolve, reject) => {
    execFile('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], { timeout: MOUNT_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (error) reject(new Error(String(stderr).trim() || error.message));
      else resolve();
    });
  });
