/**
 * When an agent starts a replica's container again after it stopped (`restart`), as an operator
 * writes it, and its normalized form (shared RestartPolicy: durations in ms).
 *
 * Defaults: policy "always", maxAttempts unlimited, backoff from "1s" doubling up to "5m", reset
 * after "10m" of running (a Kubernetes pod's crash-loop backoff caps at 5 minutes and resets after
 * 10 of good running).
 */
import Type, { type Static } from 'typebox';
import { RestartPolicySchema, SpecString as Str, type RestartPolicy } from '../../shared/container-spec.js';
import type { FieldError } from '../../shared/validation.js';
import { formatDuration, parseDuration } from './duration.js';

export const RESTART_DEFAULTS = {
  policy: 'always',
  initial: '1s',
  max: '5m',
  resetAfter: '10m',
} as const;

const Duration = () => Str({ minLength: 1, maxLength: 32 });

export const RestartPolicySpecSchema = Type.Object(
  {
    policy: Type.Optional(Type.Union([Type.Literal('always'), Type.Literal('on-failure'), Type.Literal('never')])),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    backoff: Type.Optional(
      Type.Object({ initial: Type.Optional(Duration()), max: Type.Optional(Duration()) }, { additionalProperties: false }),
    ),
    resetAfter: Type.Optional(Duration()),
  },
  { additionalProperties: false },
);
export type RestartPolicySpec = Static<typeof RestartPolicySpecSchema>;

type Bounds = { minimum: number; maximum: number };
const BOUNDS = {
  initial: RestartPolicySchema.properties.backoffInitialMs as unknown as Bounds,
  max: RestartPolicySchema.properties.backoffMaxMs as unknown as Bounds,
  resetAfter: RestartPolicySchema.properties.resetAfterMs as unknown as Bounds,
};

/** The normalized policy, or undefined with the reasons added to `errors` (each naming its field under `base`). */
export function normalizeRestartPolicy(restart: RestartPolicySpec, base: string, errors: FieldError[]): RestartPolicy | undefined {
  const before = errors.length;
  const durationMs = (field: keyof typeof BOUNDS, path: string, text: string): number => {
    const parsed = parseDuration(text);
    if (!parsed.ok) {
      errors.push({ path, message: parsed.error });
      return 0;
    }
    const { minimum, maximum } = BOUNDS[field];
    if (parsed.ms < minimum || parsed.ms > maximum) {
      errors.push({ path, message: `must be between ${formatDuration(minimum)} and ${formatDuration(maximum)} (got "${text}")` });
    }
    return parsed.ms;
  };
  const initialMs = durationMs('initial', `${base}.backoff.initial`, restart.backoff?.initial ?? RESTART_DEFAULTS.initial);
  const maxMs = durationMs('max', `${base}.backoff.max`, restart.backoff?.max ?? RESTART_DEFAULTS.max);
  const resetAfterMs = durationMs('resetAfter', `${base}.resetAfter`, restart.resetAfter ?? RESTART_DEFAULTS.resetAfter);
  if (errors.length === before && initialMs > maxMs) {
    errors.push({ path: `${base}.backoff.max`, message: `must not be below backoff.initial (${formatDuration(maxMs)} < ${formatDuration(initialMs)})` });
  }
  const policy = restart.policy ?? RESTART_DEFAULTS.policy;
  if (policy === 'never' && restart.maxAttempts !== undefined) {
    errors.push({ path: `${base}.maxAttempts`, message: 'not used with policy "never" (it never restarts)' });
  }
  if (errors.length > before) return undefined;
  return { policy, maxAttempts: restart.maxAttempts ?? null, backoffInitialMs: initialMs, backoffMaxMs: maxMs, resetAfterMs };
}
