/** A spec's validation in tests: the normalized spec, or the field errors, or a failed test. */
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import type { FieldError } from '../../shared/validation.js';

export function normalize(input: unknown): NormalizedSpec {
  const v = validateServiceSpec(input);
  if (!v.ok) throw new Error(`expected a valid spec, got ${JSON.stringify(v.errors)}`);
  return v.value;
}

export function errorsOf(input: unknown): FieldError[] {
  const v = validateServiceSpec(input);
  if (v.ok) throw new Error(`expected ${JSON.stringify(input)} to be refused, it normalized to ${JSON.stringify(v.value)}`);
  return v.errors;
}
