/**
 * How a service's containers are replaced when its spec changes (`update`), as an operator writes
 * it, and its normalized form (durations in ms).
 *
 * Defaults: parallelism 1, order "stop-first", delay "0s", monitor "5s", maxFailureRatio 0,
 * failureAction "rollback". One replica at a time, stopped before its replacement starts: a
 * service of 2 or more replicas keeps serving throughout, and a replica with a host port can be
 * replaced on a node that has room for only one of it. A failed batch rolls back by itself: an
 * edge fleet is rarely watched by someone who would resume or undo a paused update (Swarm pauses
 * by default; Kubernetes waits forever).
 */
import Type, { type Static } from 'typebox';
import { SpecString as Str } from '../../shared/container-spec.js';
import type { FieldError } from '../../shared/validation.js';
import { formatDuration, parseDuration } from './duration.js';

export const UPDATE_DEFAULTS = {
  parallelism: 1,
  order: 'stop-first',
  delay: '0s',
  monitor: '5s',
  maxFailureRatio: 0,
  failureAction: 'rollback',
} as const;

/** Longest delay or monitor: a day. A longer wait is a paused update, which an operator can have. */
const MAX_WAIT_MS = 24 * 3600 * 1000;

const Duration = () => Str({ minLength: 1, maxLength: 32 });

export const UpdateConfigSpecSchema = Type.Object(
  {
    parallelism: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    order: Type.Optional(Type.Union([Type.Literal('start-first'), Type.Literal('stop-first')])),
    delay: Type.Optional(Duration()),
    monitor: Type.Optional(Duration()),
    maxFailureRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    failureAction: Type.Optional(Type.Union([Type.Literal('rollback'), Type.Literal('pause'), Type.Literal('continue')])),
  },
  { additionalProperties: false },
);
export type UpdateConfigSpec = Static<typeof UpdateConfigSpecSchema>;

export interface UpdateConfig {
  /** Replicas replaced at once. */
  parallelism: number;
  /** start-first: the new replica runs (and is healthy) before the old one stops; stop-first: the old one stops first. */
  order: 'start-first' | 'stop-first';
  /** Wait between one batch done and the next one started. */
  delayMs: number;
  /** How long a batch's new replicas must stay healthy before the batch counts as done. */
  monitorMs: number;
  /** Share of the replicas being updated that may fail before the update counts as failed. */
  maxFailureRatio: number;
  failureAction: 'rollback' | 'pause' | 'continue';
}

export const DEFAULT_UPDATE_CONFIG: UpdateConfig = {
  parallelism: UPDATE_DEFAULTS.parallelism,
  order: UPDATE_DEFAULTS.order,
  delayMs: 0,
  monitorMs: 5000,
  maxFailureRatio: UPDATE_DEFAULTS.maxFailureRatio,
  failureAction: UPDATE_DEFAULTS.failureAction,
};

/** The normalized settings, or undefined with the reasons added to `errors` (each naming its field under `base`). */
export function normalizeUpdateConfig(update: UpdateConfigSpec, base: string, errors: FieldError[]): UpdateConfig | undefined {
  const before = errors.length;
  const durationMs = (field: 'delay' | 'monitor'): number => {
    const text = update[field] ?? UPDATE_DEFAULTS[field];
    const parsed = parseDuration(text);
    if (!parsed.ok) {
      errors.push({ path: `${base}.${field}`, message: parsed.error });
      return 0;
    }
    if (parsed.ms > MAX_WAIT_MS) {
      errors.push({ path: `${base}.${field}`, message: `must be at most ${formatDuration(MAX_WAIT_MS)} (got "${text}")` });
    }
    return parsed.ms;
  };
  const delayMs = durationMs('delay');
  const monitorMs = durationMs('monitor');
  if (errors.length > before) return undefined;
  return {
    parallelism: update.parallelism ?? UPDATE_DEFAULTS.parallelism,
    order: update.order ?? UPDATE_DEFAULTS.order,
    delayMs,
    monitorMs,
    maxFailureRatio: update.maxFailureRatio ?? UPDATE_DEFAULTS.maxFailureRatio,
    failureAction: update.failureAction ?? UPDATE_DEFAULTS.failureAction,
  };
}

/** A spec's update settings, the defaults when it has none (a spec stored before they existed has none). */
export function updateConfigOf(spec: { update?: UpdateConfig }): UpdateConfig {
  return spec.update ?? DEFAULT_UPDATE_CONFIG;
}
