/**
 * A small tmpfs to fill: what the full-disk benchmarks write on (mounting needs root). `unmount`
 * is safe to call twice and logs rather than throws, so that a benchmark's cleanup always ends.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

export class SmallDisk {
  private mounted = false;

  constructor(
    readonly dir: string,
    private readonly size: string,
  ) {}

  mount(): void {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${this.size}`, 'tmpfs', this.dir]);
    this.mounted = true;
  }

  /** Whether it is unmounted (or never was): only then may its directory be removed. */
  unmount(log: (text: string) => void): boolean {
    if (!this.mounted) return true;
    try {
      execFileSync('umount', [this.dir]);
      this.mounted = false;
    } catch (error) {
      log(`umount ${this.dir} failed: ${(error as Error).message}`);
    }
    return !this.mounted;
  }
}

/** Fills the filesystem: the write fails with ENOSPC once nothing is left, and what it wrote stays. */
export async function fillDisk(file: string, bytes: number): Promise<void> {
  await writeFile(file, Buffer.alloc(bytes)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOSPC') throw error;
  });
}
