import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeHubFrame } from '../shared/codec.js';
import type { TargetFrame } from '../shared/protocol.js';
import { writeFileAtomic } from '../shared/atomic-file.js';

/**
 * The last target from the hub, kept on the device's disk so that the agent runs its assignment
 * after a reboot while the hub is unreachable. Mode 0600: targets carry registry credentials.
 */
export class TargetCache {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'target.json');
  }

  async load(): Promise<TargetFrame | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const decoded = decodeHubFrame(text);
    // A damaged cache is no reason to stop the device: run nothing until the hub speaks.
    if (!decoded.ok || decoded.frame.type !== 'target') return null;
    return decoded.frame;
  }

  async save(target: TargetFrame): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(target), 0o600);
  }
}
