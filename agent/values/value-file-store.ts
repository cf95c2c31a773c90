import { chmod, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { ValueSource } from '../../shared/container-spec.js';
import { isTmpfs, mountTmpfs as mountTmpfsCommand, type MountTmpfs } from './tmpfs-dir.js';

/** One file of a config or secret: its version, and the mode and owner the container reads it with. */
export interface ValueFileKey {
  name: string;
  version: number;
  mode: number;
  uid: number;
  gid: number;
}

export interface ValueFileStoreOptions {
  source: ValueSource;
  /** Where the files live; made 0700. For secrets, a tmpfs (mounted there when it is not one). */
  dir: string;
  /** The most a tmpfs mounted for secrets holds. */
  tmpfsSizeBytes?: number;
  /** How a tmpfs is mounted (`mount -t tmpfs`); tests give one that fails. */
  mountTmpfs?: MountTmpfs;
}

/** Room for every value one target carries at once, and then some (pages are taken only as files are written). */
export const DEFAULT_SECRETS_TMPFS_BYTES = 64 * 1024 * 1024;

/** `<name>@<version>.<mode>.<uid>.<gid>`: a value's name never holds '@', so a file name parses one way only. */
const FILE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}@\d+\.[0-7]{4}\.\d+\.\d+$/;
/** What a write leaves behind when the agent dies mid-way (see write). */
const TEMP_FILE = /^\..*\.tmp$/;

/**
 * The files of one kind of value (configs or secrets) that containers mount, in one directory the
 * agent owns: one file per value, version, mode and owner (two services may read one secret as
 * different users). Written once, atomically, and never changed: a new version is a new file.
 *
 * Secrets live only on a tmpfs, never on the device's disk: before each secret is written the dir
 * is checked (statfs), and a dir that is no tmpfs gets one mounted over it; if that fails the
 * secret is refused (`unusable` says why) rather than written to the disk, where a stolen device
 * would give it up. Mounted at the first need, not at start: a node that runs no secret has no
 * mount, and a tmpfs unmounted under a running agent is mounted again at the next write.
 */
export class ValueFileStore {
  readonly source: ValueSource;
  readonly dir: string;
  private readonly tmpfsSizeBytes: number;
  private readonly mountTmpfs: MountTmpfs;
  private problem: string | null = null;
  /** The check (and mount) in flight: writes at once share it, or two would each mount a tmpfs, one over the other's files. */
  private readying: Promise<void> | null = null;
  private tempCount = 0;

  constructor(opts: ValueFileStoreOptions) {
    this.source = opts.source;
    this.dir = opts.dir;
    this.tmpfsSizeBytes = opts.tmpfsSizeBytes ?? DEFAULT_SECRETS_TMPFS_BYTES;
    this.mountTmpfs = opts.mountTmpfs ?? mountTmpfsCommand;
  }

  /** Null when files can be written; else why not (the dir and the reason). */
  get unusable(): string | null {
    return this.problem;
  }

  /**
   * Makes the configs' dir (0700), and removes the temp files an agent that died mid-write left.
   * Never throws: what goes wrong is kept in `unusable`, and each write fails with it.
   */
  async prepare(): Promise<void> {
    try {
      // Secrets: a dir that is no tmpfs yet holds nothing of ours, and gets its tmpfs at the first secret.
      if (this.source === 'secret') {
        if (!(await isTmpfs(this.dir))) return;
      } else {
        await this.ready();
      }
      for (const entry of await readdir(this.dir)) {
        if (TEMP_FILE.test(entry)) await unlink(path.join(this.dir, entry)).catch(() => undefined);
      }
    } catch {
      // Missing (made at the first write), or kept in `problem` by ready() and said again by each write.
    }
  }

  /** The dir exists (0700) and, for secrets, is a tmpfs (mounted now if need be); else throws, with `unusable` set. */
  private ready(): Promise<void> {
    this.readying ??= this.check().finally(() => {
      this.readying = null;
    });
    return this.readying;
  }

  private async check(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (this.source === 'secret' && !(await isTmpfs(this.dir))) {
        try {
          await this.mountTmpfs(this.dir, this.tmpfsSizeBytes);
        } catch (err) {
          throw new Error(`${this.dir} is not a tmpfs and one could not be mounted there (${(err as Error).message})`);
        }
        if (!(await isTmpfs(this.dir))) throw new Error(`${this.dir} is not a tmpfs, even after mounting one there`);
      }
      await chmod(this.dir, 0o700);
      this.problem = null;
    } catch (err) {
      const message = (err as Error).message;
      this.problem = message.includes(this.dir) ? message : `${this.dir}: ${message}`;
      throw err;
    }
  }

  pathOf(key: ValueFileKey): string {
    return path.join(this.dir, `${key.name}@${key.version}.${key.mode.toString(8).padStart(4, '0')}.${key.uid}.${key.gid}`);
  }

  /**
   * The file of `key` holding `data`, written if it is not there yet: a temp file with the mode
   * and owner, then renamed into place, so a container never mounts a half-written value. A file
   * already there holds the same bytes (a version's value never changes) and is kept as it is.
   */
  async write(key: ValueFileKey, data: Buffer): Promise<string> {
    try {
      await this.ready();
    } catch {
      const never = this.source === 'secret' ? "; secrets are never written to the device's disk" : '';
      throw new Error(`cannot write the file of ${this.source} ${key.name} version ${key.version}: ${this.problem}${never}`);
    }
    const file = this.pathOf(key);
    if (await exists(file)) return file;
    const tmp = path.join(this.dir, `.${path.basename(file)}.${process.pid}.${++this.tempCount}.tmp`);
    try {
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(data);
        await handle.chown(key.uid, key.gid);
        // After the chown, which clears set-id bits; and explicit, as the umask narrows open's mode.
        await handle.chmod(key.mode);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new Error(`cannot write the file of ${this.source} ${key.name} version ${key.version} in ${this.dir}: ${(err as Error).message}`);
    }
    return file;
  }

  /** Every value file in the dir (not temp files of writes in flight). */
  async held(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries.filter((e) => FILE_NAME.test(e)).map((e) => path.join(this.dir, e));
  }

  async remove(file: string): Promise<void> {
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
