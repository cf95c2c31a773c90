/**
 * The query of a list route (`GET /v1/nodes`, `GET /v1/services`): `?selector=` (see
 * hub/selector.ts), `?state=` (one state or several, comma-separated), `?limit=` and `?continue=`
 * (the previous page's token). Every refusal is a 400 naming the parameter.
 */
import Type, { type TSchema } from 'typebox';
import { parseSelector, SELECTOR_LIMITS, type Selector, type SelectorSubject } from '../selector.js';
import { invalid } from './errors.js';

export const DEFAULT_LIST_LIMIT = 500;
export const MAX_LIST_LIMIT = 1000;

/** A continue token's key is a node id or a service name: far below this. */
const MAX_TOKEN_CHARS = 1024;

export interface ListQuery<S extends string> {
  selector: Selector;
  /** Null: any state. */
  states: ReadonlySet<S> | null;
  limit: number;
  /** The key the page starts after (from `continue`); null: the first page. */
  after: string | null;
}

export type ListQueryString = { selector?: string; state?: string; limit?: string; continue?: string };

export function parseListQuery<S extends string>(query: ListQueryString, list: 'nodes' | 'services', states: readonly S[]): ListQuery<S> {
  const subject: SelectorSubject = list === 'nodes' ? 'node' : 'service';
  const selector = parseSelector(single(query.selector, 'selector') ?? '', subject);
  if ('error' in selector) throw invalid('invalid_query', [{ path: 'selector', message: selector.error }]);
  return {
    selector,
    states: parseStates(single(query.state, 'state'), states),
    limit: parseLimit(single(query.limit, 'limit')),
    after: parseContinue(single(query.continue, 'continue'), list),
  };
}

/**
 * The list's query for the API reference: strings all, as they come; the handler reads them and
 * names what is wrong with one. `more`: the list's own parameters.
 */
export function listQuerySchema(list: 'nodes' | 'services', states: readonly string[], more: Record<string, TSchema> = {}) {
  const example = list === 'nodes' ? 'node.labels.zone==eu-1,node.labels.ring!=canary' : 'service.labels.tier==front,name!=web';
  const fields = list === 'nodes' ? 'node.labels.<key>, node.id, node.name, node.hostname, node.arch, node.os' : 'service.labels.<key> (the spec\'s labels), service.name';
  return Type.Object({
    selector: Type.Optional(
      Type.String({ description: `terms in the placement constraint syntax, comma-separated, all of which must hold (==, !=, in (...), not in (...)) on ${fields}; e.g. ${example}; at most ${SELECTOR_LIMITS.maxTerms} terms` }),
    ),
    state: Type.Optional(Type.String({ description: `one or more of ${states.join(', ')}, comma-separated` })),
    limit: Type.Optional(Type.String({ description: `${list} per page, 1 to ${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})` })),
    continue: Type.Optional(Type.String({ description: "the previous page's continue token; the last page has none" })),
    ...more,
  });
}

/** The token of the page that starts after `lastKey` (null: no next page). */
export function continueToken(list: 'nodes' | 'services', lastKey: string | null): string | undefined {
  if (lastKey === null) return undefined;
  return Buffer.from(JSON.stringify({ list, after: lastKey })).toString('base64url');
}

/** A parameter given twice arrives as an array: one meaning only. */
function single(value: unknown, field: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw invalid('invalid_query', [{ path: field, message: 'given more than once' }]);
}

function parseStates<S extends string>(text: string | undefined, known: readonly S[]): ReadonlySet<S> | null {
  if (text === undefined) return null;
  const out = new Set<S>();
  for (const raw of text.split(',')) {
    const state = raw.trim();
    if (!(known as readonly string[]).includes(state)) {
      throw invalid('invalid_query', [{ path: 'state', message: `unknown state ${JSON.stringify(state.slice(0, 40))}: one or more of ${known.join(', ')}, comma-separated` }]);
    }
    out.add(state as S);
  }
  return out;
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LIST_LIMIT;
  const n = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= MAX_LIST_LIMIT)) {
    throw invalid('invalid_query', [{ path: 'limit', message: `must be a whole number from 1 to ${MAX_LIST_LIMIT}, got ${JSON.stringify(text.slice(0, 40))}` }]);
  }
  return n;
}

function parseContinue(token: string | undefined, list: 'nodes' | 'services'): string | null {
  if (token === undefined) return null;
  const refused = () => invalid('invalid_query', [{ path: 'continue', message: `not a continue token of a page of ${list}: pass the "continue" of the previous page as it came` }]);
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw refused();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw refused();
  }
  const d = decoded as { list?: unknown; after?: unknown } | null;
  if (typeof d !== 'object' || d === null || d.list !== list || typeof d.after !== 'string' || d.after === '') throw refused();
  return d.after;
}
