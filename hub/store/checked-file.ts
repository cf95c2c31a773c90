import { createHash } from 'node:crypto';
import { copyFile, link, readFile, stat, unlink } from 'node:fs/promises';
import type { Adapter } from 'lowdb';
import { TextFile } from 'lowdb/node';
import { StoreFileDamagedError, UNKNOWN_FORMAT, type PreviousCopy } from './store-file-damaged.js';

/**
 * The format of a store file: `{"format":1,"sha256":"<hex>","data":<records>}`, the checksum over
 * the exact text of `data` as written. The envelope has a fixed layout, so that reading finds the
 * data text by position and hashes it as written: no second stringify to check it.
 */
export const STORE_FILE_FORMAT = 1;
const HEAD = `{"format":${STORE_FILE_FORMAT},"sha256":"`;
const MID = '","data":';
const ENVELOPE = /^\{"format":(\d+),"sha256":"([0-9a-f]{64})","data":/;
/** The start of any versioned file, whatever its layout: a record map never holds a number here. */
const VERSIONED = /^\{"format":(\d+)/;

/** Where a file's previous good copy is kept. */
export const previousCopyOf = (file: string): string => `${file}.prev`;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export type Decoded<T> =
  | {
      ok: true;
      data: Record<string, T>;
      format: 0 | typeof STORE_FILE_FORMAT;
      /** The checksum in the envelope (format 1): what a change log names as its base. */
      checksum: string | null;
    }
  | { ok: false; reason: string };

/**
 * Reads the bytes of a store file: format 1 (checked against its checksum), or format 0, the plain
 * record map of earlier versions (no checksum: at least its shape is checked). Either way every
 * value must be an object that carries its own key in `keyField` (a node's `id`, a service's
 * `name`), which a file of the wrong collection, or a hand edit gone wrong, does not.
 */
export function decodeStoreFile<T>(bytes: Buffer, keyField: string | null): Decoded<T> {
  if (bytes.length === 0) return damaged('empty');
  // JSON never holds a raw NUL: a file zero-filled by a crash (or a torn block) does.
  if (bytes.includes(0)) return damaged('holds NUL bytes');
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return damaged('not valid UTF-8');
  }
  const versioned = VERSIONED.exec(text);
  if (versioned) {
    const format = Number(versioned[1]);
    if (format !== STORE_FILE_FORMAT) return damaged(`${UNKNOWN_FORMAT} ${versioned[1]}; this version reads ${STORE_FILE_FORMAT}`);
    const envelope = ENVELOPE.exec(text);
    if (!envelope) return damaged('malformed header');
    if (!text.endsWith('}')) return damaged('truncated');
    // The header is ASCII and the closing brace one byte, so the data's bytes are found by the same
    // offsets: hashing them as read costs a pass over the bytes, hashing the text would first
    // encode all of it to UTF-8 again (about as long as the decode itself, on a 14 MB store).
    const dataStart = envelope[0].length;
    if (sha256(bytes.subarray(dataStart, bytes.length - 1)) !== envelope[2]) return damaged('checksum mismatch');
    return shaped(parse(text.slice(dataStart, -1)), keyField, STORE_FILE_FORMAT, envelope[2]!);
  }
  return shaped(parse(text), keyField, 0, null);
}

const damaged = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

const PARSE_FAILED = Symbol('not JSON');

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return PARSE_FAILED;
  }
}

function shaped<T>(value: unknown, keyField: string | null, format: 0 | typeof STORE_FILE_FORMAT, checksum: string | null): Decoded<T> {
  if (value === PARSE_FAILED) return damaged('not valid JSON: truncated?');
  if (value === null) return damaged('holds null, not records');
  if (Array.isArray(value)) return damaged('holds an array, not records');
  if (typeof value !== 'object') return damaged(`holds a ${typeof value}, not records`);
  for (const [key, record] of Object.entries(value as Record<string, unknown>)) {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) return damaged(`record ${JSON.stringify(key)} is not an object`);
    if (keyField !== null && (record as Record<string, unknown>)[keyField] !== key) return damaged(`record ${JSON.stringify(key)} does not carry its key in "${keyField}"`);
  }
  return { ok: true, data: value as Record<string, T>, format, checksum };
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The text of a store file holding `data`: one stringify, one hash. */
export function encodeStoreFile(data: unknown): string {
  return encodeWithChecksum(data).text;
}

function encodeWithChecksum(data: unknown): { text: string; checksum: string } {
  const dataText = JSON.stringify(data);
  const checksum = sha256(dataText);
  return { text: `${HEAD}${checksum}${MID}${dataText}}`, checksum };
}

export interface CheckedFileOptions {
  /** The field of each record that holds its key (checked at read; null: not checked). */
  keyField: string | null;
  /** Called with the size of each file written (counters). */
  onWrite?: (bytes: number) => void;
}

/**
 * A lowdb adapter for one store file: checked at read (a damaged file rejects with a
 * StoreFileDamagedError naming it, never reads as empty), written in format 1 through lowdb's
 * TextFile (steno: a temp file renamed over the old one), and the file a write replaces is kept
 * as `<file>.prev`, so that a file damaged later can be restored from its previous good copy.
 */
export class CheckedFile<T> implements Adapter<Record<string, T>> {
  private readonly text: TextFile;
  /** The file on disk is known good (read and checked, or written here): only then is it kept. */
  private good = false;
  /** The checksum of the file on disk, as last read or written (null: none, or of format 0). */
  checksum: string | null = null;
  /** The size of the file on disk, as last read or written (0: none). */
  bytes = 0;

  constructor(
    readonly file: string,
    private readonly opts: CheckedFileOptions,
  ) {
    this.text = new TextFile(file);
  }

  async read(): Promise<Record<string, T> | null> {
    const result = await readChecked<T>(this.file, this.opts.keyField);
    if (result === null) {
      // No file, but a previous copy: the file was there and is gone (writes only ever rename
      // over it). Reading it as empty would drop its records and remove their containers.
      const previous = await inspectPrevious(this.file, this.opts.keyField);
      if (previous.state !== 'missing') throw new StoreFileDamagedError(this.file, 'missing, though its previous copy exists', previous);
      return null;
    }
    if (!result.ok) throw new StoreFileDamagedError(this.file, result.reason, await inspectPrevious(this.file, this.opts.keyField));
    this.good = true;
    this.checksum = result.checksum;
    this.bytes = result.bytes;
    return result.data;
  }

  async write(data: Record<string, T>): Promise<void> {
    await this.writeEncoded(encodeWithChecksum(data));
  }

  /** The file's text for `data`, and the checksum it names (what writeEncoded writes). */
  encode(data: Record<string, T>): { text: string; checksum: string } {
    return encodeWithChecksum(data);
  }

  async writeEncoded({ text, checksum }: { text: string; checksum: string }): Promise<void> {
    const bytes = Buffer.byteLength(text);
    this.opts.onWrite?.(bytes);
    if (this.good) await keepPrevious(this.file);
    await this.text.write(text);
    this.good = true;
    // Only once the file is in place: what is on disk until then is the previous one.
    this.checksum = checksum;
    this.bytes = bytes;
  }
}

/** The file's records (and its size), null if there is no file, or why it cannot be trusted. */
export async function readChecked<T>(file: string, keyField: string | null): Promise<(Decoded<T> & { bytes: number }) | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return { ...decodeStoreFile<T>(bytes, keyField), bytes: bytes.length };
}

/** Whether the file's previous copy is there and whole. */
export async function inspectPrevious(file: string, keyField: string | null): Promise<PreviousCopy> {
  const prev = previousCopyOf(file);
  const [result, info] = await Promise.all([readChecked(prev, keyField), stat(prev).catch(() => null)]);
  if (result === null) return { file: prev, state: 'missing', reason: null, writtenAtMs: null };
  return { file: prev, state: result.ok ? 'good' : 'damaged', reason: result.ok ? null : result.reason, writtenAtMs: info?.mtimeMs ?? null };
}

/**
 * Keeps the current file as its previous copy, before the write that replaces it: a hard link
 * (no copy: the rename that follows gives the file a new inode and leaves this one to `.prev`).
 * A crash between the steps leaves the current file whole, with or without a previous copy.
 */
async function keepPrevious(file: string): Promise<void> {
  const prev = previousCopyOf(file);
  await unlink(prev).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  try {
    await link(file, prev);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    // Filesystems without hard links: a copy costs more but keeps the same promise.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV') return copyFile(file, prev);
    throw error;
  }
}
