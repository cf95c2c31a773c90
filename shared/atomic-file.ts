import { open, rename, unlink } from 'node:fs/promises';

/**
 * Writes a file so that a crash or power cut leaves either the old or the new content, never a
 * mix: write a temp file, fsync it, rename it over the old one. A failure at any step (a full
 * disk fails the write) removes the temp file: its name carries the pid, so each agent run
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
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}
