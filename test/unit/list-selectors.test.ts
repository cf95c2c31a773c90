/** List selectors (terms in the constraint syntax), the sorted key index pages walk, If-Match, and spec diffs. */
import { describe, expect, it } from 'vitest';
import { checkRevision, parseIfMatch, RevisionMismatchError } from '../../hub/revision-match.js';
import { nodeMatches, parseSelector, serviceMatches, type Selector } from '../../hub/selector.js';
import { SortedKeys } from '../../hub/sorted-keys.js';
import { specChanges } from '../../hub/spec-diff.js';
import type { ServiceRecord } from '../../hub/store/store.js';
import { normalize } from '../helpers/spec-validation.js';

function selector(text: string, subject: 'node' | 'service'): Selector {
  const s = parseSelector(text, subject);
  if ('error' in s) throw new Error(s.error);
  return s;
}

function refusal(text: string, subject: 'node' | 'service'): string {
  const s = parseSelector(text, subject);
  if (!('error' in s)) throw new Error(`expected "${text}" to be refused`);
  return s.error;
}

const node = (labels: Record<string, string>, name = 'dev') => ({ id: `id-${name}`, name, labels, facts: { hostname: name, arch: 'arm64', os: 'linux' } });

describe('parseSelector', () => {
  it('reads comma-joined terms, all of which must hold, with commas of an in list kept in the list', () => {
    const s = selector('node.labels.zone in (eu-1, eu-2),node.labels.ring!=canary', 'node');
    expect(s).toHaveLength(2);
    expect(nodeMatches(node({ zone: 'eu-2', ring: 'stable' }), s)).toBe(true);
    expect(nodeMatches(node({ zone: 'eu-2', ring: 'canary' }), s)).toBe(false);
    expect(nodeMatches(node({ zone: 'us-1' }), s)).toBe(false);
  });

  it('takes terms without their prefix, and attributes', () => {
    expect(nodeMatches(node({ zone: 'eu-1' }), selector('labels.zone==eu-1, arch==arm64', 'node'))).toBe(true);
    expect(nodeMatches(node({}, 'gw'), selector('node.name==gw', 'node'))).toBe(true);
  });

  it('selects everything when empty', () => {
    expect(selector('', 'node')).toEqual([]);
    expect(selector('  ', 'service')).toEqual([]);
  });

  it('refuses malformed terms with the constraint parser\'s reason, naming the term', () => {
    expect(refusal('node.labels.zone=eu-1', 'node')).toMatch(/"node\.labels\.zone=eu-1": expected/);
    expect(refusal('node.labels.zone==eu-1,', 'node')).toBe('term 2 is empty');
    expect(refusal('node.colour==red', 'node')).toMatch(/unknown attribute "node\.colour"/);
    expect(refusal('node.labels.zone in (a, b', 'node')).toMatch(/unclosed parenthesis/);
    expect(refusal('service.name==web', 'node')).toMatch(/a node selector reads node\.<field>/);
    expect(refusal('x'.repeat(5000), 'node')).toMatch(/at most 4096/);
    expect(refusal(Array.from({ length: 33 }, (_, i) => `labels.k${i}==v`).join(','), 'node')).toMatch(/33 terms: at most 32/);
  });

  it('reads a service\'s name and its spec\'s labels, and nothing a node has', () => {
    const record = { name: 'web', spec: normalize({ image: 'nginx:1', labels: { tier: 'front' } }) } as ServiceRecord;
    expect(serviceMatches(record, selector('service.labels.tier==front', 'service'))).toBe(true);
    expect(serviceMatches(record, selector('name==web', 'service'))).toBe(true);
    expect(serviceMatches(record, selector('name in (api, db)', 'service'))).toBe(false);
    expect(refusal('service.arch==arm64', 'service')).toMatch(/unknown attribute "service\.arch" \(use service\.labels\.<key> or service\.name\)/);
    expect(refusal('service.colour==red', 'service')).toMatch(/unknown attribute "service\.colour"/);
    expect(refusal('node.labels.zone==eu-1', 'service')).toMatch(/a service selector reads service\.<field>/);
  });
});

describe('SortedKeys', () => {
  it('pages in key order after a key, follows keys that come and go, and says when no page follows', () => {
    const all = new Set(['c', 'a', 'e']);
    const keys = new SortedKeys(() => all);
    const pick = (k: string) => (all.has(k) ? k : undefined);
    expect(keys.page(null, 2, pick)).toEqual({ items: ['a', 'c'], lastKey: 'c' });
    all.add('b');
    keys.added('b');
    all.add('d');
    keys.added('d');
    all.delete('e');
    keys.removed('e');
    // b came before the page's start: not shown again; d is after it.
    expect(keys.page('c', 2, pick)).toEqual({ items: ['d'], lastKey: null });
    // A key that is gone still places a page: the page starts after it.
    expect(keys.page('bb', 10, pick)).toEqual({ items: ['c', 'd'], lastKey: null });
    expect(keys.page(null, 4, pick)).toEqual({ items: ['a', 'b', 'c', 'd'], lastKey: null });
  });

  it('passes over what pick refuses, and gives no next page when nothing more would match', () => {
    const keys = new SortedKeys(() => ['a', 'b', 'c', 'd']);
    const evens = (k: string) => (k === 'b' || k === 'd' ? k : undefined);
    expect(keys.page(null, 1, evens)).toEqual({ items: ['b'], lastKey: 'b' });
    expect(keys.page('b', 1, evens)).toEqual({ items: ['d'], lastKey: null });
  });
});

describe('If-Match', () => {
  it('parses quoted and bare revisions, lists and *', () => {
    expect(parseIfMatch('"3"')).toEqual({ kind: 'revisions', revisions: [3] });
    expect(parseIfMatch('3')).toEqual({ kind: 'revisions', revisions: [3] });
    expect(parseIfMatch('"3", "4"')).toEqual({ kind: 'revisions', revisions: [3, 4] });
    expect(parseIfMatch('*')).toEqual({ kind: 'any' });
  });

  it.each(['W/"3"', '"3', 'abc', '"-1"', '', '"3",'])('refuses %j', (header) => {
    expect(parseIfMatch(header)).toHaveProperty('error');
  });

  it('holds when the revision is one named, or any with *, and never for a missing record', () => {
    expect(() => checkRevision(undefined, null, 'x')).not.toThrow();
    expect(() => checkRevision({ kind: 'revisions', revisions: [2, 3] }, 3, 'x')).not.toThrow();
    expect(() => checkRevision({ kind: 'any' }, 7, 'x')).not.toThrow();
    const stale = (() => {
      try {
        checkRevision({ kind: 'revisions', revisions: [2] }, 3, 'service "web"');
      } catch (error) {
        return error;
      }
      return null;
    })();
    expect(stale).toBeInstanceOf(RevisionMismatchError);
    expect((stale as RevisionMismatchError).currentRevision).toBe(3);
    expect(() => checkRevision({ kind: 'any' }, null, 'x')).toThrow(RevisionMismatchError);
  });
});

describe('specChanges', () => {
  it('lists each changed path, objects by key and arrays by index', () => {
    const before = { image: 'a:1', replicas: 2, env: ['A=1', 'B=2'], labels: { x: '1' } };
    const after = { image: 'a:2', replicas: 2, env: ['A=1', 'B=3', 'C=4'], labels: {} };
    expect(specChanges(before, after).changes).toEqual([
      { path: 'env[1]', from: 'B=2', to: 'B=3' },
      { path: 'env[2]', to: 'C=4' },
      { path: 'image', from: 'a:1', to: 'a:2' },
      { path: 'labels.x', from: '1' },
    ]);
    expect(specChanges(before, before).changes).toEqual([]);
  });

  it('stops at its bound and says so', () => {
    const many = specChanges({ env: [] }, { env: Array.from({ length: 300 }, (_, i) => `V${i}=1`) });
    expect(many.changes).toHaveLength(200);
    expect(many.truncated).toBe(true);
  });
});
