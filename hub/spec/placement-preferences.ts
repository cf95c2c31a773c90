/**
 * How a service's replicas are spread over the nodes that fit them: `strategy` "spread" (the
 * default: fewest of the service's replicas first) or "binpack" (least room left first, leaving
 * whole nodes free), and `spreadBy` "node.labels.<key>" (even over the label's values first, as
 * Swarm's placement preference does). The scheduler's side: scheduler/strategies.ts and
 * scheduler/spread-groups.ts.
 */
import Type from 'typebox';
import { SpecString as Str } from '../../shared/container-spec.js';
import type { FieldError } from '../../shared/validation.js';

export const StrategySpecSchema = Type.Union([Type.Literal('spread'), Type.Literal('binpack')]);
export const SpreadBySpecSchema = Str({ minLength: 1, maxLength: 512 });

const SPREAD_BY_RE = /^node\.labels\.([A-Za-z0-9_.\-/]+)$/;

/** The label key of a `spreadBy`, or null with the reason added to `errors`. */
export function normalizeSpreadBy(text: string, path: string, errors: FieldError[]): string | null {
  const m = SPREAD_BY_RE.exec(text);
  if (m) return m[1] as string;
  errors.push({ path, message: `"${text}" is not a node label: write "node.labels.<key>" (like "node.labels.zone")` });
  return null;
}
