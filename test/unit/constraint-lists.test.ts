/** The `in` and `not in` constraint forms: parsing, clear errors for malformed lists, limits, matching. */
import { describe, expect, it } from 'vitest';
import {
  CONSTRAINT_LIST_LIMITS,
  matchesConstraint,
  parseConstraint,
  type Constraint,
  type ConstraintSubject,
} from '../../hub/spec/constraints.js';
import { errorsOf, normalize } from '../helpers/spec-validation.js';

function parsed(text: string): Constraint {
  const c = parseConstraint(text);
  if ('error' in c) throw new Error(c.error);
  return c;
}

function errorOf(text: string): string {
  const c = parseConstraint(text);
  if (!('error' in c)) throw new Error(`expected "${text}" to be refused, it parsed to ${JSON.stringify(c)}`);
  return c.error;
}

describe('parseConstraint: in and not in', () => {
  it.each([
    ['node.labels.zone in (eu-1, eu-2)', { kind: 'label', key: 'zone', op: 'in', values: ['eu-1', 'eu-2'] }],
    ['node.labels.zone not in (eu-1)', { kind: 'label', key: 'zone', op: 'not in', values: ['eu-1'] }],
    ['node.arch not in (arm, arm64)', { kind: 'attribute', attribute: 'arch', op: 'not in', values: ['arm', 'arm64'] }],
    ['node.os in (linux)', { kind: 'attribute', attribute: 'os', op: 'in', values: ['linux'] }],
    // Spacing is free around the keyword, the parentheses and the commas; inner spaces stay.
    ['  node.labels.site in(plant 7 ,plant 9)  ', { kind: 'label', key: 'site', op: 'in', values: ['plant 7', 'plant 9'] }],
    ['node.labels.zone not   in   ( a ,b )', { kind: 'label', key: 'zone', op: 'not in', values: ['a', 'b'] }],
    ['node.labels.com.example/tier in (edge)', { kind: 'label', key: 'com.example/tier', op: 'in', values: ['edge'] }],
  ])('parses %j', (text, expected) => {
    expect(parseConstraint(text)).toEqual(expected);
  });

  it('leaves == and != as they were, values that merely contain "in" included', () => {
    expect(parseConstraint('node.labels.zone == in (a)')).toEqual({ kind: 'label', key: 'zone', op: '==', value: 'in (a)' });
    expect(parseConstraint('node.labels.in != x')).toEqual({ kind: 'label', key: 'in', op: '!=', value: 'x' });
  });

  it.each([
    ['node.labels.zone in ()', /malformed constraint "node\.labels\.zone in \(\)": empty list/],
    ['node.labels.zone in (  )', /empty list/],
    ['node.labels.zone in (eu-1, eu-2', /unclosed parenthesis/],
    ['node.labels.zone in (eu-1, , eu-2)', /empty item 2 in the list/],
    ['node.labels.zone in (eu-1,)', /empty item 2 in the list/],
    ['node.labels.zone not in (,eu-1)', /empty item 1 in the list/],
    ['node.labels.zone in eu-1, eu-2', /expected a list in parentheses after "in"/],
    ['node.labels.zone not in eu-1', /expected a list in parentheses after "not in"/],
    ['node.labels.zone in', /expected a list in parentheses after "in"/],
    ['node.labels.zone in (a) or b', /text after the closing parenthesis/],
    ['node.labels.zone in (a, (b))', /parenthesis inside the list/],
    ['node.bogus in (a)', /unknown attribute "node\.bogus"/],
    ['node.labels. in (a)', /empty label key/],
  ])('refuses %j, naming the constraint', (text, message) => {
    const error = errorOf(text);
    expect(error).toMatch(message);
    expect(error).toContain(`"${text}"`);
  });

  it(`takes up to ${CONSTRAINT_LIST_LIMITS.maxValues} values of up to ${CONSTRAINT_LIST_LIMITS.maxValueLength} characters`, () => {
    const values = Array.from({ length: CONSTRAINT_LIST_LIMITS.maxValues }, (_, i) => `v${i}`);
    expect(parsed(`node.labels.zone in (${values.join(',')})`)).toMatchObject({ values });
    expect(errorOf(`node.labels.zone in (${[...values, 'one-more'].join(',')})`)).toMatch(/65 values: at most 64/);
    const long = 'x'.repeat(CONSTRAINT_LIST_LIMITS.maxValueLength);
    expect(parsed(`node.labels.zone in (${long})`)).toMatchObject({ values: [long] });
    expect(errorOf(`node.labels.zone in (a, ${long}x)`)).toMatch(/item 2 in the list is 257 characters: at most 256/);
  });
});

describe('matchesConstraint: in and not in', () => {
  const node: ConstraintSubject = {
    id: 'n-1',
    name: 'gateway-1',
    labels: { zone: 'eu-1' },
    facts: { hostname: 'gw1.local', arch: 'arm64', os: 'linux' },
  };
  const unknownNode: ConstraintSubject = { id: 'n-2', name: 'fresh', labels: {}, facts: null };

  it.each([
    ['node.labels.zone in (eu-1, eu-2)', true],
    ['node.labels.zone in (eu-2, us-1)', false],
    ['node.labels.zone not in (eu-2, us-1)', true],
    ['node.labels.zone not in (us-1, eu-1)', false],
    ['node.arch in (arm, arm64)', true],
    ['node.arch not in (arm, arm64)', false],
    ['node.id in (n-1)', true],
    ['node.name not in (gateway-1, gateway-2)', false],
    // Exact, case-sensitive values: no prefixes, no case folding.
    ['node.labels.zone in (eu, EU-1)', false],
  ])('%s holds: %s', (text, holds) => {
    expect(matchesConstraint(node, parsed(text))).toBe(holds);
  });

  it('a missing label or fact is in no list, so "in" fails and "not in" holds, as == and != do', () => {
    expect(matchesConstraint(node, parsed('node.labels.rack in (r1, r2)'))).toBe(false);
    expect(matchesConstraint(node, parsed('node.labels.rack not in (r1, r2)'))).toBe(true);
    expect(matchesConstraint(unknownNode, parsed('node.arch in (arm64)'))).toBe(false);
    expect(matchesConstraint(unknownNode, parsed('node.arch not in (arm64)'))).toBe(true);
  });

  it('does not mistake Object.prototype members for labels', () => {
    expect(matchesConstraint(node, parsed('node.labels.constructor in (x)'))).toBe(false);
    expect(matchesConstraint(node, parsed('node.labels.toString not in (x)'))).toBe(true);
  });
});

describe('in and not in constraints in a spec', () => {
  it('are accepted and stored as written', () => {
    const spec = normalize({ image: 'nginx:1', constraints: ['node.labels.zone in (eu-1, eu-2)', 'node.arch not in (arm)'] });
    expect(spec.constraints).toEqual(['node.labels.zone in (eu-1, eu-2)', 'node.arch not in (arm)']);
  });

  it('a malformed list is refused naming its index', () => {
    const errors = errorsOf({ image: 'nginx:1', constraints: ['node.os == linux', 'node.labels.zone in (eu-1,'] });
    expect(errors).toEqual([{ path: 'constraints[1]', message: expect.stringMatching(/unclosed parenthesis/) }]);
  });
});
