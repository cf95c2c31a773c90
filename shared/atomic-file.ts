import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes a file so that a crash or power cut leaves either the old or the new content, never a
 * mix: write a temp file, fsync it, rename it over the old one, fsync the directory (until then
 * the rename itself may be lost to a power cut, on the SD cards and flash of edge devices above
 * all, and a key file or identity written just before would be gone). A failure at any step (a
 * full disk fails the write) removes the temp file: its name carries the pid, so each agent run
 * would otherwise leave one more behind.
 */
export async function writeFileAtomic(file: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const handle = await open(tmp, 'w', mode);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    const dir = await open(path.dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}
