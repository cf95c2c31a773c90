import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UNKNOWN_FORMAT, type LogCut } from './store-file-damaged.js';

/**
 * A shard's change log: the records changed since its file was last written whole, one line per
 * write, appended. A write then costs in proportion to what it changed rather than to the shard
 * (the snapshot + log of etcd and Raft stores); the shard file is written whole again (and the log
 * set aside as `<log>.prev`) once the log would grow past twice the shard's own size, so the log
 * is bounded by it (see LOG_RATIO in sharded-collection.ts).
 *
 * A log starts with a header, `B1 <base> <sha256 of base>\n`, where base is the checksum of the
 * shard file it was written on (see checked-file.ts): a log is laid only over that exact file. A
 * crash after a shard was written whole but before its log was set aside leaves a log of the old
 * shard beside the new one; laid over it, it would undo part of the write that made the new shard.
 *
 * Each line after it: `L1 <sha256 of json> <json>\n`, where json maps each changed key to its
 * record, or to null for a record deleted. Every line is checked at read; a last line without its
 * newline is an append cut short (a crash or a full disk), never acknowledged, and is left out.
 * Every log starts with its header: one that does not is damage, never read as lines on no base.
 */
export const LOG_LINE_VERSION = 'L1';
export const LOG_HEADER_VERSION = 'B1';
const LINE = /^L(\d+) ([0-9a-f]{64}) /;
const HEADER = /^B(\d+) ([0-9a-f]{64}) ([0-9a-f]{64})$/;

export const changeLogOf = (shardFile: string): string => shardFile.replace(/\.json$/, '.log');

export type LogChanges<T> = Record<string, T | null>;

export type DecodedLog<T> =
  | {
      ok: true;
      /** The checksum of the shard file the log was written on; null for no log (or a header cut short). */
      base: string | null;
      entries: Array<LogChanges<T>>;
      validBytes: number;
      torn: boolean;
    }
  | {
      ok: false;
      reason: string;
      /**
       * Where the log can be cut: the bytes of the whole lines before the first bad one, and how
       * many lines come before it and after (each line is one whole write, so the lines before it
       * are a state that existed).
       */
      cut: LogCut;
    };

export function encodeLogHeader(base: string): string {
  return `${LOG_HEADER_VERSION} ${base} ${sha256(base)}\n`;
}

/**
 * A lower bound of the bytes of `encodeLogLine(changes)`, in one look over the keys: each entry
 * holds its key quoted, a colon, a comma or brace, and a value of at least two characters ("{}";
 * null is four). Lets a writer skip encoding a line that cannot fit where it would go.
 */
export function lineBytesAtLeast(changes: LogChanges<unknown>): number {
  // "L1 " + 64 hex + " " + "{}" + "\n"; n entries have n - 1 commas.
  let bytes = 71;
  let commas = -1;
  for (const key in changes) {
    bytes += key.length + 3 + (changes[key] === null ? 4 : 2);
    commas++;
  }
  return bytes + Math.max(0, commas);
}

export function encodeLogLine(changes: LogChanges<unknown>): string {
  const json = JSON.stringify(changes);
  return `${LOG_LINE_VERSION} ${sha256(json)} ${json}\n`;
}

/**
 * The log's records, in order; empty when there is none. Given the checksum of its shard file
 * (`shardChecksum`), a log written on another one comes back with its base and no lines: they are
 * not part of the state, so a bad one among them is no damage.
 */
export async function readChangeLog<T>(file: string, keyField: string | null, shardChecksum?: string | null): Promise<DecodedLog<T>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, base: null, entries: [], validBytes: 0, torn: false };
    throw error;
  }
  return decodeChangeLog<T>(bytes, keyField, shardChecksum);
}

/**
 * The checksum of the shard file a log was written on, from its header alone (its lines are not
 * read); null when there is no log or its header is missing or bad.
 */
export async function readLogBase(file: string): Promise<string | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const end = bytes.indexOf(0x0a);
  if (end === -1) return null;
  const head = HEADER.exec(bytes.subarray(0, end).toString('latin1'));
  if (!head || `B${head[1]}` !== LOG_HEADER_VERSION || sha256(head[2]!) !== head[3]) return null;
  return head[2]!;
}

export function decodeChangeLog<T>(bytes: Buffer, keyField: string | null, shardChecksum?: string | null): DecodedLog<T> {
  const entries: Array<LogChanges<T>> = [];
  let start = 0;
  if (bytes.length === 0) return { ok: true, base: null, entries, validBytes: 0, torn: false };
  const end = bytes.indexOf(0x0a);
  // A header cut short: the first write of the log never resolved.
  if (end === -1 && bytes[0] === LOG_HEADER_VERSION.charCodeAt(0)) return { ok: true, base: null, entries, validBytes: 0, torn: true };
  // A bad header leaves no base to check the lines against: cutting drops them all.
  const badHeader = (reason: string): DecodedLog<T> => {
    let droppedLines = 0;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a) droppedLines++;
    // The header line is no write.
    if (bytes[0] === LOG_HEADER_VERSION.charCodeAt(0) && droppedLines > 0) droppedLines--;
    return { ok: false, reason, cut: { validBytes: 0, keptLines: 0, droppedLines } };
  };
  if (bytes[0] !== LOG_HEADER_VERSION.charCodeAt(0)) return badHeader('it does not start with its header');
  const head = HEADER.exec(bytes.subarray(0, end).toString('latin1'));
  if (!head) return badHeader('the header is malformed');
  if (`B${head[1]}` !== LOG_HEADER_VERSION) return badHeader(`${UNKNOWN_FORMAT} B${head[1]} (the header); this version reads ${LOG_HEADER_VERSION}`);
  if (sha256(head[2]!) !== head[3]) return badHeader('the header: checksum mismatch');
  const base = head[2]!;
  // Written on another shard file (or on none: a shard with no checksum takes no log).
  if (shardChecksum !== undefined && base !== shardChecksum) return { ok: true, base, entries, validBytes: 0, torn: false };
  start = end + 1;
  let lineNo = 0;
  const bad = (reason: string): DecodedLog<T> => {
    let droppedLines = 0;
    for (let i = start; i < bytes.length; i++) if (bytes[i] === 0x0a) droppedLines++;
    return { ok: false, reason, cut: { validBytes: start, keptLines: entries.length, droppedLines } };
  };
  while (start < bytes.length) {
    const end = bytes.indexOf(0x0a, start);
    // An append cut short: its write never resolved, so nothing relied on it.
    if (end === -1) return { ok: true, base, entries, validBytes: start, torn: true };
    lineNo++;
    const line = bytes.subarray(start, end);
    const what = `line ${lineNo}`;
    // JSON never holds a raw NUL: a zero-filled block does.
    if (line.includes(0)) return bad(`${what} holds NUL bytes`);
    let text: string;
    try {
      text = utf8.decode(line);
    } catch {
      return bad(`${what} is not valid UTF-8`);
    }
    const head = LINE.exec(text);
    if (!head) return bad(`${what} is malformed`);
    if (`L${head[1]}` !== LOG_LINE_VERSION) return bad(`${UNKNOWN_FORMAT} L${head[1]} (${what}); this version reads ${LOG_LINE_VERSION}`);
    const json = text.slice(head[0].length);
    if (sha256(json) !== head[2]) return bad(`${what}: checksum mismatch`);
    let changes: unknown;
    try {
      changes = JSON.parse(json);
    } catch {
      return bad(`${what} is not valid JSON`);
    }
    if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) return bad(`${what} holds no records`);
    for (const [key, record] of Object.entries(changes as Record<string, unknown>)) {
      if (record === null) continue;
      if (typeof record !== 'object' || Array.isArray(record)) return bad(`${what}: record ${JSON.stringify(key)} is not an object`);
      if (keyField !== null && (record as Record<string, unknown>)[keyField] !== key) {
        return bad(`${what}: record ${JSON.stringify(key)} does not carry its key in "${keyField}"`);
      }
    }
    entries.push(changes as LogChanges<T>);
    start = end + 1;
  }
  return { ok: true, base, entries, validBytes: start, torn: false };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
