/**
 * The query of a list route (`GET /v1/nodes`, `GET /v1/services`): `?selector=` (see
 * hub/selector.ts), `?state=` (one state or several, comma-separated), `?limit=` and `?continue=`
 * (the previous page's token). Every refusal is a 400 naming the parameter.
 */
import { parseSelector, type Selector, type SelectorSubject } from '../selector.js';
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
