/**
 * List selectors: terms in the placement constraint syntax, joined by commas, all of which must
 * hold (`node.labels.zone==eu-1,node.labels.ring!=canary`). Each term is read by the constraint
 * parser itself (spec/constraints.ts), so that a selector means on a list what it means in a spec.
 *
 * Nodes: `node.labels.<key>`, `node.id`, `node.name`, `node.hostname`, `node.arch`, `node.os`.
 * Services: `service.labels.<key>` (the spec's labels) and `service.name`. The prefix may be left
 * out (`labels.zone==eu-1`, `name==web`).
 */
import { matchesAll, parseConstraint, type Constraint, type ConstraintSubject } from './spec/constraints.js';
import type { ServiceRecord } from './store/store.js';

export type SelectorSubject = 'node' | 'service';

/** Bounds on a selector, so that matching a fleet against one stays cheap. */
export const SELECTOR_LIMITS = { maxLength: 4096, maxTerms: 32 } as const;

export type Selector = readonly Constraint[];

/** What a service selector may read besides its labels. */
const SERVICE_ATTRIBUTES = new Set(['name']);

/** The terms of `text`, or why it is refused; an empty text selects everything. */
export function parseSelector(text: string, subject: SelectorSubject): Selector | { error: string } {
  if (text.length > SELECTOR_LIMITS.maxLength) return { error: `${text.length} characters: at most ${SELECTOR_LIMITS.maxLength}` };
  if (text.trim() === '') return [];
  const terms = splitTerms(text);
  if (terms.length > SELECTOR_LIMITS.maxTerms) return { error: `${terms.length} terms: at most ${SELECTOR_LIMITS.maxTerms}` };
  const out: Constraint[] = [];
  for (const [i, raw] of terms.entries()) {
    const term = raw.trim();
    if (term === '') return { error: `term ${i + 1} is empty` };
    const parsed = parseTerm(term, subject);
    if ('error' in parsed) return { error: `"${term}": ${parsed.error}` };
    out.push(parsed);
  }
  return out;
}

/** Commas inside an `in (a, b)` list belong to the list. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (c === ',' && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms;
}

function parseTerm(term: string, subject: SelectorSubject): Constraint | { error: string } {
  const other: SelectorSubject = subject === 'node' ? 'service' : 'node';
  if (term.startsWith(`${other}.`)) return { error: `a ${subject} selector reads ${subject}.<field>, not ${other}.<field>` };
  const field = term.startsWith(`${subject}.`) ? term.slice(subject.length + 1) : term;
  // The constraint parser reads `node.` terms; a service's are read the same way, then held to
  // the fields a service has.
  const asNode = `node.${field}`;
  const parsed = parseConstraint(asNode);
  if ('error' in parsed) {
    const prefix = `malformed constraint "${asNode}": `;
    const why = parsed.error.startsWith(prefix) ? parsed.error.slice(prefix.length) : parsed.error;
    return { error: subject === 'node' ? why : why.replaceAll('node.', 'service.') };
  }
  if (subject === 'service' && parsed.kind === 'attribute' && !SERVICE_ATTRIBUTES.has(parsed.attribute)) {
    return { error: `unknown attribute "service.${parsed.attribute}" (use service.labels.<key> or service.name)` };
  }
  return parsed;
}

export function nodeMatches(node: ConstraintSubject, selector: Selector): boolean {
  return selector.length === 0 || matchesAll(node, selector);
}

export function serviceMatches(service: ServiceRecord, selector: Selector): boolean {
  if (selector.length === 0) return true;
  return matchesAll({ id: service.name, name: service.name, labels: service.spec.labels ?? {}, facts: null }, selector);
}
