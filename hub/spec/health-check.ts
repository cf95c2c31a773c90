/**
 * A service's health check as an operator writes it, and its normalized form (shared
 * HealthCheck: durations in ms, the status range as numbers, null for what the type does not use).
 *
 * Defaults: path "/" and expectedStatus "200-399" (http only), interval "10s", timeout "2s",
 * retries 3, startPeriod "0s". Fields that do not belong to the type are refused rather than
 * ignored: a `path` on a tcp check is a mistake the operator wants to hear about.
 */
import Type, { type Static } from 'typebox';
import { HealthCheckSchema, SpecString as Str, type HealthCheck } from '../../shared/container-spec.js';
import type { FieldError } from '../../shared/validation.js';
import { formatDuration, parseDuration } from './duration.js';

export const HEALTH_CHECK_DEFAULTS = {
  path: '/',
  expectedStatus: '200-399',
  interval: '10s',
  timeout: '2s',
  retries: 3,
  startPeriod: '0s',
} as const;

const Duration = () => Str({ minLength: 1, maxLength: 32 });

export const HealthCheckSpecSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('http'), Type.Literal('tcp'), Type.Literal('exec')]),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    path: Type.Optional(Str({ minLength: 1, maxLength: 1024 })),
    expectedStatus: Type.Optional(Type.Union([Str({ minLength: 1, maxLength: 16 }), Type.Integer()])),
    command: Type.Optional(Type.Array(Str(), { maxItems: 256 })),
    interval: Type.Optional(Duration()),
    timeout: Type.Optional(Duration()),
    retries: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    startPeriod: Type.Optional(Duration()),
  },
  { additionalProperties: false },
);
export type HealthCheckSpec = Static<typeof HealthCheckSpecSchema>;

type CheckType = HealthCheckSpec['type'];

/** Which optional fields each type reads; the others are refused on it. */
const FIELDS_OF: Record<CheckType, ReadonlySet<keyof HealthCheckSpec>> = {
  http: new Set(['port', 'path', 'expectedStatus']),
  tcp: new Set(['port']),
  exec: new Set(['command']),
};
const TYPED_FIELDS = ['port', 'path', 'expectedStatus', 'command'] as const;

/** The bounds HealthCheckSchema sets on each duration, in ms: checked here so the message names the field. */
type Bounds = { minimum: number; maximum: number };
const DURATION_BOUNDS: Record<'interval' | 'timeout' | 'startPeriod', Bounds> = {
  interval: HealthCheckSchema.properties.intervalMs as unknown as Bounds,
  timeout: HealthCheckSchema.properties.timeoutMs as unknown as Bounds,
  startPeriod: HealthCheckSchema.properties.startPeriodMs as unknown as Bounds,
};

const STATUS_RE = /^(\d{3})(?:-(\d{3}))?$/;

/**
 * The normalized check, or undefined with the reasons added to `errors` (each naming its field
 * under `base`). `check` already has its shape (HealthCheckSpecSchema).
 */
export function normalizeHealthCheck(check: HealthCheckSpec, base: string, errors: FieldError[]): HealthCheck | undefined {
  const before = errors.length;
  const at = (field: string) => `${base}.${field}`;
  const { type } = check;

  for (const field of TYPED_FIELDS) {
    if (check[field] !== undefined && !FIELDS_OF[type].has(field)) {
      errors.push({ path: at(field), message: `not used by a "${type}" check (${usedBy(field)})` });
    }
  }
  if (type !== 'exec' && check.port === undefined) {
    errors.push({ path: at('port'), message: `required for a "${type}" check: the container port to check (1-65535)` });
  }
  if (type === 'exec') {
    if (check.command === undefined || check.command.length === 0) {
      errors.push({ path: at('command'), message: 'required for an "exec" check: a non-empty array, the program and its arguments' });
    } else if (check.command[0] === '') {
      errors.push({ path: at('command[0]'), message: 'the program to run must not be empty' });
    }
  }
  if (check.path !== undefined && !check.path.startsWith('/')) {
    errors.push({ path: at('path'), message: `must start with "/" (got "${check.path}")` });
  }
  let status: { min: number; max: number } | null = null;
  if (type === 'http') {
    status = parseStatusRange(String(check.expectedStatus ?? HEALTH_CHECK_DEFAULTS.expectedStatus), at('expectedStatus'), errors);
  }

  const durationMs = (field: keyof typeof DURATION_BOUNDS): number | null => {
    const text = check[field] ?? HEALTH_CHECK_DEFAULTS[field];
    const parsed = parseDuration(text);
    if (!parsed.ok) {
      errors.push({ path: at(field), message: parsed.error });
      return null;
    }
    const { minimum, maximum } = DURATION_BOUNDS[field];
    if (parsed.ms < minimum || parsed.ms > maximum) {
      errors.push({ path: at(field), message: `must be between ${formatDuration(minimum)} and ${formatDuration(maximum)} (got "${text}")` });
      return null;
    }
    return parsed.ms;
  };
  const intervalMs = durationMs('interval');
  const timeoutMs = durationMs('timeout');
  const startPeriodMs = durationMs('startPeriod');
  // A try that may outlast the interval would overlap the next one.
  if (intervalMs !== null && timeoutMs !== null && timeoutMs > intervalMs) {
    errors.push({ path: at('timeout'), message: `must not exceed the interval (${formatDuration(timeoutMs)} > ${formatDuration(intervalMs)})` });
  }
  if (errors.length > before) return undefined;

  return {
    type,
    port: type === 'exec' ? null : (check.port as number),
    path: type === 'http' ? (check.path ?? HEALTH_CHECK_DEFAULTS.path) : null,
    statusMin: status?.min ?? null,
    statusMax: status?.max ?? null,
    command: type === 'exec' ? (check.command as string[]) : null,
    intervalMs: intervalMs as number,
    timeoutMs: timeoutMs as number,
    retries: check.retries ?? HEALTH_CHECK_DEFAULTS.retries,
    startPeriodMs: startPeriodMs as number,
  };
}

function usedBy(field: (typeof TYPED_FIELDS)[number]): string {
  const types = (Object.keys(FIELDS_OF) as CheckType[]).filter((t) => FIELDS_OF[t].has(field));
  return `only ${types.map((t) => `"${t}"`).join(' and ')} checks use it`;
}

/** "200" or "200-299", each code within 100-599 and the range in order. */
function parseStatusRange(text: string, path: string, errors: FieldError[]): { min: number; max: number } | null {
  const m = STATUS_RE.exec(text);
  if (!m) {
    errors.push({ path, message: `"${text}" is not a status code or range: write a code like "200" or a range like "200-299"` });
    return null;
  }
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (min < 100 || max > 599 || max < 100 || min > 599) {
    errors.push({ path, message: `status codes are between 100 and 599 (got "${text}")` });
    return null;
  }
  if (min > max) {
    errors.push({ path, message: `the range's low end must not exceed its high end (got "${text}")` });
    return null;
  }
  return { min, max };
}
