/**
 * What changed between two specs, field by field, for a dry run to show: each path that differs
 * (`replicas`, `labels.zone`, `ports[1].published`) with its value before and after (absent: the
 * field was not there). Objects are compared key by key and arrays index by index, so that one
 * changed variable in a long list is one change, not the whole list. Pure.
 */
import { canonicalJson } from '../shared/container-spec.js';
import { redactSpec, type NormalizedSpec } from './spec/service-spec.js';

export interface SpecChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

/** Changes listed at most; a spec rewritten whole says enough well before this. */
export const MAX_SPEC_CHANGES = 200;

export function specChanges(before: unknown, after: unknown): { changes: SpecChange[]; truncated: boolean } {
  const changes: SpecChange[] = [];
  let truncated = false;
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (truncated) return;
    if (isRecord(a) && isRecord(b)) {
      for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) walk(a[key], b[key], path === '' ? key : `${path}.${key}`);
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) walk(a[i], b[i], `${path}[${i}]`);
      return;
    }
    if (a === undefined && b === undefined) return;
    if (a !== undefined && b !== undefined && canonicalJson(a) === canonicalJson(b)) return;
    if (changes.length === MAX_SPEC_CHANGES) {
      truncated = true;
      return;
    }
    changes.push({ path, ...(a === undefined ? {} : { from: a }), ...(b === undefined ? {} : { to: b }) });
  };
  walk(before, after, '');
  return { changes, truncated };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The changes from `before` (undefined: a new service) to `after` as an operator may see them:
 * registry passwords redacted on both sides, a changed one still listed as a change.
 */
export function shownChanges(before: NormalizedSpec | undefined, after: NormalizedSpec): { changes: SpecChange[]; truncated: boolean } {
  let shownAfter: NormalizedSpec = redactSpec(after);
  const passwordChanged = before?.registryAuth && after.registryAuth && before.registryAuth.password !== after.registryAuth.password;
  if (passwordChanged && shownAfter.registryAuth) shownAfter = { ...shownAfter, registryAuth: { ...shownAfter.registryAuth, password: '(redacted: changed)' } };
  return specChanges(before === undefined ? {} : redactSpec(before), shownAfter);
}
