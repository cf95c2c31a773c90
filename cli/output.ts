import { stringify } from 'yaml';
import type { CliIo } from './io.js';

/**
 * Text a device may have written (a replica's error, a node's words), as one line without control
 * characters: an escape sequence from a hostile device must not reach the operator's terminal.
 */
export function plainText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

/** A cell is one line: a multi-line error or a control character would break the columns. */
function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  return plainText(String(value));
}

/** Columns padded to their widest cell, two spaces apart, upper-case headers (as kubectl prints). */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<readonly unknown[]>): string {
  const cells = rows.map((row) => headers.map((_, i) => cell(row[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: readonly string[]) =>
    row
      .map((text, i) => (i === row.length - 1 ? text : text.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `inspect`'s human form: the whole view as YAML, which reads like the spec files people write. */
export function printYaml(io: CliIo, value: unknown): void {
  io.stdout.write(stringify(value, { lineWidth: 0 }));
}

/** `zone=eu-1,ring=canary`, sorted, for a table cell. */
export function labelsText(labels: Record<string, string> | null | undefined): string {
  return Object.entries(labels ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** How long ago, coarsely: `45s`, `12m`, `3h`, `5d`. */
export function age(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return '-';
  const ms = nowMs - Date.parse(iso);
  if (!Number.isFinite(ms)) return '-';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
