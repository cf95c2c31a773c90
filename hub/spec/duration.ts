/**
 * Durations as specs write them: an integer and a unit, "500ms", "5s", "1m", "1h". One unit per
 * duration: "1m30s" is refused (write "90s"); so are fractions ("1.5s": write "1500ms"), signs and
 * spaces. One form is easy to read back and cannot be misread, and every value is still writable.
 */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

const DURATION_RE = /^(\d{1,15})(ms|s|m|h)$/;

export type ParsedDuration = { ok: true; ms: number } | { ok: false; error: string };

/** `text` in milliseconds, or why it is not a duration. */
export function parseDuration(text: string): ParsedDuration {
  const m = DURATION_RE.exec(text);
  if (!m) {
    return { ok: false, error: `"${text}" is not a duration: write an integer and one unit, ms, s, m or h (like "500ms", "5s", "1m")` };
  }
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (!Number.isSafeInteger(ms)) return { ok: false, error: `"${text}" is too long a duration` };
  return { ok: true, ms };
}

/** A duration in words for messages: the largest unit that writes it exactly ("90s", "2m", "1500ms"). */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) if (ms !== 0 && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  return `${ms}ms`;
}
