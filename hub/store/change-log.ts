import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UNKNOWN_FORMAT } from './store-file-damaged.js';

/**
 * A shard's change log: the records changed since its file was last written whole, one line per
 * write, appended. A write then costs in proportion to what it changed rather than to the shard
 * (the snapshot + log of etcd and Raft stores); the shard file is written whole again (and the log
 * emptied) once the log would grow past the shard's own size, so the log is bounded by it.
 *
 * A line: `L1 <sha256 of json> <json>\n`, where json maps each changed key to its record, or to
 * null for a record deleted. Every line is checked at read; a last line without its newline is an
 * append cut short (a crash or a full disk), never acknowledged, and is left out.
 */
export const LOG_LINE_VERSION = 'L1';
const LINE = /^L(\d+) ([0-9a-f]{64}) /;

export const changeLogOf = (shardFile: string): string => shardFile.replace(/\.json$/, '.log');

export type LogChanges<T> = Record<string, T | null>;

export type DecodedLog<T> =
  | { ok: true; entries: Array<LogChanges<T>>; validBytes: number; torn: boolean }
  | { ok: false; reason: string };

export function encodeLogLine(changes: LogChanges<unknown>): string {
  const json = JSON.stringify(changes);
  return `${LOG_LINE_VERSION} ${sha256(json)} ${json}\n`;
}

/** The log's records, in order; empty when there is none. */
export async function readChangeLog<T>(file: string, keyField: string | null): Promise<DecodedLog<T>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, entries: [], validBytes: 0, torn: false };
    throw error;
  }
  return decodeChangeLog<T>(bytes, keyField);
}

export function decodeChangeLog<T>(bytes: Buffer, keyField: string | null): DecodedLog<T> {
  const entries: Array<LogChanges<T>> = [];
  let start = 0;
  let lineNo = 0;
  while (start < bytes.length) {
    const end = bytes.indexOf(0x0a, start);
    // An append cut short: its write never resolved, so nothing relied on it.
    if (end === -1) return { ok: true, entries, validBytes: start, torn: true };
    lineNo++;
    const line = bytes.subarray(start, end);
    const what = `line ${lineNo}`;
    // JSON never holds a raw NUL: a zero-filled block does.
    if (line.includes(0)) return { ok: false, reason: `${what} holds NUL bytes` };
    let text: string;
    try {
      text = utf8.decode(line);
    } catch {
      return { ok: false, reason: `${what} is not valid UTF-8` };
    }
    const head = LINE.exec(text);
    if (!head) return { ok: false, reason: `${what} is malformed` };
    if (`L${head[1]}` !== LOG_LINE_VERSION) return { ok: false, reason: `${UNKNOWN_FORMAT} L${head[1]} (${what}); this version reads ${LOG_LINE_VERSION}` };
    const json = text.slice(head[0].length);
    if (sha256(json) !== head[2]) return { ok: false, reason: `${what}: checksum mismatch` };
    let changes: unknown;
    try {
      changes = JSON.parse(json);
    } catch {
      return { ok: false, reason: `${what} is not valid JSON` };
    }
    if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) return { ok: false, reason: `${what} holds no records` };
    for (const [key, record] of Object.entries(changes as Record<string, unknown>)) {
      if (record === null) continue;
      if (typeof record !== 'object' || Array.isArray(record)) return { ok: false, reason: `${what}: record ${JSON.stringify(key)} is not an object` };
      if (keyField !== null && (record as Record<string, unknown>)[keyField] !== key) {
        return { ok: false, reason: `${what}: record ${JSON.stringify(key)} does not carry its key in "${keyField}"` };
      }
    }
    entries.push(changes as LogChanges<T>);
    start = end + 1;
  }
  return { ok: true, entries, validBytes: start, torn: false };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
