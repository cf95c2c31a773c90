import { describe, it, expect } from 'vitest';
import {
  SPEC_LIMITS,
  parsedConstraints,
  redactSpec,
  validateServiceName,
  validateServiceSpec,
  type NormalizedSpec,
} from '../../hub/spec/service-spec.js';
import { matchesAll, matchesConstraint, parseConstraint, type Constraint, type ConstraintSubject } from '../../hub/spec/constraints.js';
import { canonicalJson, containerSpecHash, containerSpecOf, type ContainerSpec } from '../../shared/container-spec.js';
import { errorsOf, normalize } from '../helpers/spec-validation.js';

// ---------------------------------------------------------------------------------------------
// Helpers

function parsed(text: string): Constraint {
  const c = parseConstraint(text);
  if ('error' in c) throw new Error(`expected "${text}" to parse: ${c.error}`);
  return c;
}

const fullSpec = {
  image: 'registry.example.com/team/web:1.2.3',
  command: ['node', 'server.js', '--port', '8080'],
  env: { NODE_ENV: 'production', _PRIVATE: 'x', LOG_LEVEL2: 'debug' },
  mode: 'replicated',
  replicas: 3,
  ports: [
    { containerPort: 8080, hostPort: 80, protocol: 'tcp' },
    { containerPort: 53, hostPort: 53, protocol: 'udp' },
    { containerPort: 9090 },
  ],
  resources: { cpus: 0.5, memoryMB: 256 },
  constraints: ['node.labels.zone == eu-1', 'node.arch != arm'],
  labels: { team: 'edge', 'com.example/tier': 'frontend' },
  registryAuth: { username: 'robot', password: 's3cret', serveraddress: 'registry.example.com' },
};

// ---------------------------------------------------------------------------------------------

describe('validateServiceSpec: valid specs', () => {
  it('normalizes a full spec, keeping every field and filling the defaults of optional port fields', () => {
    const v = validateServiceSpec(fullSpec);
    expect(v).toEqual({
      ok: true,
      value: {
        image: 'registry.example.com/team/web:1.2.3',
        command: ['node', 'server.js', '--port', '8080'],
        env: { NODE_ENV: 'production', _PRIVATE: 'x', LOG_LEVEL2: 'debug' },
        mode: 'replicated',
        replicas: 3,
        ports: [
          { containerPort: 8080, hostPort: 80, protocol: 'tcp' },
          { containerPort: 53, hostPort: 53, protocol: 'udp' },
          { containerPort: 9090, hostPort: null, protocol: 'tcp' },
        ],
        resources: { cpus: 0.5, memoryMB: 256 },
        constraints: ['node.labels.zone == eu-1', 'node.arch != arm'],
        labels: { team: 'edge', 'com.example/tier': 'frontend' },
        registryAuth: { username: 'robot', password: 's3cret', serveraddress: 'registry.example.com' },
        onNodeLost: 'reschedule',
        lostAfterMs: null,
      } satisfies NormalizedSpec,
    });
  });

  it('fills every default for a spec with only an image', () => {
    expect(normalize({ image: 'nginx:1' })).toEqual({
      image: 'nginx:1',
      command: null,
      env: {},
      mode: 'replicated',
      replicas: 1,
      ports: [],
      resources: { cpus: null, memoryMB: null },
      constraints: [],
      labels: {},
      registryAuth: null,
      onNodeLost: 'reschedule',
      lostAfterMs: null,
    } satisfies NormalizedSpec);
  });

  it('fills hostPort null and protocol tcp for a port given only its container port', () => {
    expect(normalize({ image: 'x', ports: [{ containerPort: 80 }] }).ports).toEqual([{ containerPort: 80, hostPort: null, protocol: 'tcp' }]);
  });

  it('fills cpus / memoryMB with null when resources gives only one of them', () => {
    expect(normalize({ image: 'x', resources: { cpus: 2 } }).resources).toEqual({ cpus: 2, memoryMB: null });
    expect(normalize({ image: 'x', resources: { memoryMB: 64 } }).resources).toEqual({ cpus: null, memoryMB: 64 });
  });

  it('gives a global service 0 replicas', () => {
    const s = normalize({ image: 'x', mode: 'global' });
    expect(s.mode).toBe('global');
    expect(s.replicas).toBe(0);
  });

  it('accepts the replica bounds 0 and the maximum', () => {
    expect(normalize({ image: 'x', replicas: 0 }).replicas).toBe(0);
    expect(normalize({ image: 'x', replicas: SPEC_LIMITS.maxReplicas }).replicas).toBe(SPEC_LIMITS.maxReplicas);
  });

  it('accepts tcp and udp on the same host port', () => {
    const s = normalize({
      image: 'x',
      ports: [
        { containerPort: 53, hostPort: 53, protocol: 'tcp' },
        { containerPort: 53, hostPort: 53, protocol: 'udp' },
      ],
    });
    expect(s.ports.map((p) => `${p.protocol}/${p.hostPort}`)).toEqual(['tcp/53', 'udp/53']);
  });

  it('accepts several ports without a host port for the same container port', () => {
    expect(normalize({ image: 'x', ports: [{ containerPort: 80 }, { containerPort: 80 }] }).ports).toHaveLength(2);
  });

  it('does not modify its input', () => {
    const input = structuredClone(fullSpec);
    const before = structuredClone(input);
    normalize(input);
    expect(input).toEqual(before);
  });

  it('gives the same answer for the same input', () => {
    expect(validateServiceSpec(fullSpec)).toEqual(validateServiceSpec(structuredClone(fullSpec)));
  });
});

describe('validateServiceSpec: refused specs', () => {
  const cases: Array<{ name: string; input: unknown; path: string; message: RegExp }> = [
    { name: 'unknown top-level field', input: { image: 'x', foo: 1 }, path: 'foo', message: /unknown field/ },
    {
      name: 'unknown nested field',
      input: { image: 'x', ports: [{ containerPort: 80, bogus: true }] },
      path: 'ports[0].bogus',
      message: /unknown field/,
    },
    { name: 'unknown field in resources', input: { image: 'x', resources: { gpus: 1 } }, path: 'resources.gpus', message: /unknown field/ },
    {
      name: 'unknown field in registryAuth',
      input: { image: 'x', registryAuth: { username: 'u', password: 'p', token: 't' } },
      path: 'registryAuth.token',
      message: /unknown field/,
    },
    { name: 'replicas as a string', input: { image: 'x', replicas: '2' }, path: 'replicas', message: /integer/ },
    { name: 'replicas not whole', input: { image: 'x', replicas: 1.5 }, path: 'replicas', message: /integer/ },
    { name: 'env value not a string', input: { image: 'x', env: { A: 1 } }, path: 'env.A', message: /string/ },
    { name: 'command as a string', input: { image: 'x', command: 'x' }, path: 'command', message: /array/ },
    { name: 'command with a non-string argument', input: { image: 'x', command: ['a', 2] }, path: 'command[1]', message: /string/ },
    { name: 'replicas below 0', input: { image: 'x', replicas: -1 }, path: 'replicas', message: />= 0/ },
    {
      name: 'replicas above the maximum',
      input: { image: 'x', replicas: SPEC_LIMITS.maxReplicas + 1 },
      path: 'replicas',
      message: new RegExp(`<= ${SPEC_LIMITS.maxReplicas}`),
    },
    { name: 'missing image', input: { replicas: 1 }, path: 'image', message: /required/ },
    { name: 'empty image', input: { image: '' }, path: 'image', message: /fewer than 1 character/ },
    { name: 'image not a string', input: { image: 5 }, path: 'image', message: /string/ },
    { name: 'unknown mode', input: { image: 'x', mode: 'daemon' }, path: 'mode', message: /.+/ },
    { name: 'port out of range', input: { image: 'x', ports: [{ containerPort: 70000 }] }, path: 'ports[0].containerPort', message: /<= 65535/ },
    { name: 'port protocol sctp', input: { image: 'x', ports: [{ containerPort: 1, protocol: 'sctp' }] }, path: 'ports[0].protocol', message: /.+/ },
    { name: 'port without containerPort', input: { image: 'x', ports: [{ hostPort: 80 }] }, path: 'ports[0].containerPort', message: /required/ },
    { name: 'cpus of 0', input: { image: 'x', resources: { cpus: 0 } }, path: 'resources.cpus', message: />= 0.01/ },
    // The engine cannot express it: it became "no limit".
    { name: 'cpus of 1e-300', input: { image: 'x', resources: { cpus: 1e-300 } }, path: 'resources.cpus', message: />= 0.01/ },
    { name: 'image with spaces and "!"', input: { image: 'not a valid ref !!' }, path: 'image', message: /whitespace/ },
    { name: 'image with an upper-case name', input: { image: 'registry.example.com/Team/web:1' }, path: 'image', message: /not an image reference/ },
    { name: 'image with a lone surrogate', input: { image: 'web:\ud800' }, path: 'image', message: /printable ASCII/ },
    { name: 'registryAuth with an empty password', input: { image: 'x', registryAuth: { username: 'u', password: '' } }, path: 'registryAuth.password', message: /fewer than 1/ },
    {
      name: 'constraint with a single "="',
      input: { image: 'x', constraints: ['node.labels.zone = eu'] },
      path: 'constraints[0]',
      message: /malformed constraint "node\.labels\.zone = eu"/,
    },
    {
      name: 'constraint without "node."',
      input: { image: 'x', constraints: ['labels.zone == x'] },
      path: 'constraints[0]',
      message: /malformed constraint "labels\.zone == x"/,
    },
    {
      name: 'constraint on an unknown attribute',
      input: { image: 'x', constraints: ['node.bogus == 1'] },
      path: 'constraints[0]',
      message: /unknown attribute "node\.bogus"/,
    },
    {
      name: 'constraint with an empty label key',
      input: { image: 'x', constraints: ['node.labels.zone == eu', 'node.labels. == x'] },
      path: 'constraints[1]',
      message: /empty label key/,
    },
    {
      name: 'constraint without a value',
      input: { image: 'x', constraints: ['node.arch == '] },
      path: 'constraints[0]',
      message: /malformed constraint/,
    },
    {
      name: 'replicas with mode global',
      input: { image: 'x', mode: 'global', replicas: 2 },
      path: 'replicas',
      message: /global/,
    },
    {
      name: 'two ports with the same host port and protocol',
      input: {
        image: 'x',
        ports: [
          { containerPort: 80, hostPort: 8080, protocol: 'tcp' },
          { containerPort: 81, hostPort: 8081 },
          { containerPort: 82, hostPort: 8080, protocol: 'tcp' },
        ],
      },
      path: 'ports[2].hostPort',
      message: /tcp\/8080 is already used by ports\[0\]/,
    },
    {
      name: 'two ports on one host port, one with the default protocol',
      input: { image: 'x', ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81, hostPort: 8080, protocol: 'tcp' }] },
      path: 'ports[1].hostPort',
      message: /already used by ports\[0\]/,
    },
    { name: 'env name with a dash', input: { image: 'x', env: { 'A-B': 'v' } }, path: 'env.A-B', message: /pattern/ },
    { name: 'env name starting with a digit', input: { image: 'x', env: { '1A': 'v' } }, path: 'env.1A', message: /pattern/ },
    { name: 'env name with a space', input: { image: 'x', env: { 'A B': 'v' } }, path: 'env.A B', message: /pattern/ },
    { name: 'empty label key', input: { image: 'x', labels: { '': 'v' } }, path: 'labels.', message: /fewer than 1/ },
    { name: 'label key over 256 characters', input: { image: 'x', labels: { ['k'.repeat(257)]: 'v' } }, path: `labels.${'k'.repeat(257)}`, message: /more than 256/ },
    { name: 'label value not a string', input: { image: 'x', labels: { a: 1 } }, path: 'labels.a', message: /string/ },
    { name: 'null body', input: null, path: '', message: /object/ },
    { name: 'array body', input: [{ image: 'x' }], path: '', message: /object/ },
    { name: 'string body', input: 'image: x', path: '', message: /object/ },
    { name: 'number body', input: 42, path: '', message: /object/ },
  ];

  it.each(cases)('$name', ({ input, path, message }) => {
    const errors = errorsOf(input);
    expect(errors).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  it('refuses an env name with a line break, whatever its value', () => {
    // A key outside TypeBox's `^.*$` record pattern used to skip every check, value included.
    const errors = errorsOf({ image: 'x', env: { 'A\nB': 5 } });
    expect(errors.some((e) => e.path === 'env.A\nB')).toBe(true);
  });

  it('refuses a label key with a line break instead of leaving its value unchecked', () => {
    const errors = errorsOf({ image: 'x', labels: { 'a\nb': 5 } });
    expect(errors.some((e) => e.path === 'labels.a\nb')).toBe(true);
  });

  it('reports every semantic problem at once', () => {
    const errors = errorsOf({
      image: 'x',
      mode: 'global',
      replicas: 1,
      constraints: ['node.bogus == 1'],
      ports: [
        { containerPort: 1, hostPort: 9 },
        { containerPort: 2, hostPort: 9 },
      ],
    });
    expect(errors.map((e) => e.path).sort()).toEqual(['constraints[0]', 'ports[1].hostPort', 'replicas']);
  });

  it('refuses too many ports, env entries and constraints', () => {
    const ports = Array.from({ length: SPEC_LIMITS.maxPorts + 1 }, (_, i) => ({ containerPort: i + 1 }));
    expect(errorsOf({ image: 'x', ports })).toContainEqual({ path: 'ports', message: expect.stringMatching(/more than/) });
    const env = Object.fromEntries(Array.from({ length: SPEC_LIMITS.maxEnv + 1 }, (_, i) => [`V${i}`, 'x']));
    expect(errorsOf({ image: 'x', env }).some((e) => e.path === 'env')).toBe(true);
    const constraints = Array.from({ length: SPEC_LIMITS.maxConstraints + 1 }, () => 'node.os == linux');
    expect(errorsOf({ image: 'x', constraints }).some((e) => e.path === 'constraints')).toBe(true);
  });

  it('refuses a string longer than the limit', () => {
    const long = 'x'.repeat(SPEC_LIMITS.maxStringLength + 1);
    expect(errorsOf({ image: 'x', env: { A: long } })).toContainEqual({ path: 'env.A', message: expect.stringMatching(/more than/) });
    expect(errorsOf({ image: 'x'.repeat(513) })).toContainEqual({ path: 'image', message: expect.stringMatching(/more than 512/) });
  });
});

describe('validateServiceName', () => {
  it.each(['web', 'a-1', 'a', '0', 'my-service-2', 'a'.repeat(63)])('accepts %j', (name) => {
    expect(validateServiceName(name)).toBeNull();
  });

  it.each(['Web', '-a', 'a-', 'a_b', 'a.b', '', 'a b', 'a'.repeat(64)])('refuses %j', (name) => {
    const error = validateServiceName(name);
    expect(error).not.toBeNull();
    expect(error!.path).toBe('name');
    expect(error!.message).toMatch(/lower-case/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('parseConstraint', () => {
  it('parses label constraints with == and !=', () => {
    expect(parseConstraint('node.labels.zone == eu-1')).toEqual({ kind: 'label', key: 'zone', op: '==', value: 'eu-1' });
    expect(parseConstraint('node.labels.zone != eu-1')).toEqual({ kind: 'label', key: 'zone', op: '!=', value: 'eu-1' });
  });

  it('keeps dots and slashes in label keys', () => {
    expect(parseConstraint('node.labels.com.example/tier == edge')).toEqual({ kind: 'label', key: 'com.example/tier', op: '==', value: 'edge' });
  });

  it.each(['id', 'name', 'hostname', 'arch', 'os'] as const)('parses the attribute %s', (attribute) => {
    expect(parseConstraint(`node.${attribute} == v`)).toEqual({ kind: 'attribute', attribute, op: '==', value: 'v' });
  });

  it('tolerates missing or extra whitespace around the operator and the ends', () => {
    expect(parseConstraint('node.arch==arm64')).toEqual({ kind: 'attribute', attribute: 'arch', op: '==', value: 'arm64' });
    expect(parseConstraint('  node.arch   !=   arm64  ')).toEqual({ kind: 'attribute', attribute: 'arch', op: '!=', value: 'arm64' });
  });

  it('keeps inner spaces of a value', () => {
    expect(parseConstraint('node.labels.site == plant 7')).toEqual({ kind: 'label', key: 'site', op: '==', value: 'plant 7' });
  });

  it.each([
    ['node.labels.zone = eu', /expected "node\.<attribute> == <value>"/],
    ['labels.zone == x', /expected/],
    ['node.bogus == 1', /unknown attribute "node\.bogus"/],
    ['node.labels. == x', /empty label key/],
    ['node.labels.zone ==', /malformed/],
    ['', /malformed/],
    ['node.arch ~= arm', /malformed/],
  ])('refuses %j', (text, message) => {
    const c = parseConstraint(text);
    expect('error' in c).toBe(true);
    expect((c as { error: string }).error).toMatch(message);
  });
});

describe('matchesConstraint / matchesAll', () => {
  const node: ConstraintSubject = {
    id: 'n-1',
    name: 'gateway-1',
    labels: { zone: 'eu-1', gpu: 'true' },
    facts: { hostname: 'gw1.local', arch: 'arm64', os: 'linux' },
  };
  const unknownNode: ConstraintSubject = { id: 'n-2', name: 'fresh', labels: {}, facts: null };

  it('== holds when the label equals the value and not otherwise', () => {
    expect(matchesConstraint(node, parsed('node.labels.zone == eu-1'))).toBe(true);
    expect(matchesConstraint(node, parsed('node.labels.zone == us-1'))).toBe(false);
  });

  it('!= holds when the label differs and not when it is equal', () => {
    expect(matchesConstraint(node, parsed('node.labels.zone != us-1'))).toBe(true);
    expect(matchesConstraint(node, parsed('node.labels.zone != eu-1'))).toBe(false);
  });

  it('a missing label never equals anything, so == is false and != is true', () => {
    expect(matchesConstraint(node, parsed('node.labels.rack == r1'))).toBe(false);
    expect(matchesConstraint(node, parsed('node.labels.rack != r1'))).toBe(true);
  });

  it('does not mistake Object.prototype members for labels', () => {
    expect(matchesConstraint(node, parsed('node.labels.constructor == x'))).toBe(false);
    expect(matchesConstraint(node, parsed('node.labels.toString != x'))).toBe(true);
  });

  it.each([
    ['id', 'n-1'],
    ['name', 'gateway-1'],
    ['hostname', 'gw1.local'],
    ['arch', 'arm64'],
    ['os', 'linux'],
  ])('matches the attribute %s', (attribute, value) => {
    expect(matchesConstraint(node, parsed(`node.${attribute} == ${value}`))).toBe(true);
    expect(matchesConstraint(node, parsed(`node.${attribute} == other`))).toBe(false);
    expect(matchesConstraint(node, parsed(`node.${attribute} != ${value}`))).toBe(false);
    expect(matchesConstraint(node, parsed(`node.${attribute} != other`))).toBe(true);
  });

  it('is case-sensitive', () => {
    expect(matchesConstraint(node, parsed('node.os == Linux'))).toBe(false);
  });

  it('treats facts of a node that never said hello as missing, while id and name still match', () => {
    expect(matchesConstraint(unknownNode, parsed('node.arch == arm64'))).toBe(false);
    expect(matchesConstraint(unknownNode, parsed('node.arch != arm64'))).toBe(true);
    expect(matchesConstraint(unknownNode, parsed('node.hostname == fresh'))).toBe(false);
    expect(matchesConstraint(unknownNode, parsed('node.os != linux'))).toBe(true);
    expect(matchesConstraint(unknownNode, parsed('node.id == n-2'))).toBe(true);
    expect(matchesConstraint(unknownNode, parsed('node.name == fresh'))).toBe(true);
  });

  it('matchesAll needs every constraint, and holds for none', () => {
    const all = ['node.labels.zone == eu-1', 'node.arch == arm64', 'node.labels.rack != r9'].map(parsed);
    expect(matchesAll(node, all)).toBe(true);
    expect(matchesAll(node, [...all, parsed('node.os == windows')])).toBe(false);
    expect(matchesAll(node, [parsed('node.os == windows'), ...all])).toBe(false);
    expect(matchesAll(node, [])).toBe(true);
    expect(matchesAll(unknownNode, all)).toBe(false);
  });

  it('parsedConstraints gives the parsed constraints of a normalized spec, in order', () => {
    const spec = normalize({ image: 'x', constraints: ['node.labels.zone == eu-1', 'node.os != windows'] });
    expect(parsedConstraints(spec)).toEqual([
      { kind: 'label', key: 'zone', op: '==', value: 'eu-1' },
      { kind: 'attribute', attribute: 'os', op: '!=', value: 'windows' },
    ]);
    expect(matchesAll(node, parsedConstraints(spec))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('redactSpec', () => {
  it('hides the password and keeps the rest, leaving its input untouched', () => {
    const spec = normalize(fullSpec);
    const before = structuredClone(spec);
    const redacted = redactSpec(spec);
    expect(redacted.registryAuth).toEqual({ username: 'robot', password: '(redacted)', serveraddress: 'registry.example.com' });
    expect(JSON.stringify(redacted)).not.toContain('s3cret');
    expect({ ...redacted, registryAuth: null }).toEqual({ ...spec, registryAuth: null });
    expect(spec).toEqual(before);
    expect(spec.registryAuth!.password).toBe('s3cret');
  });

  it('returns a spec without credentials as it is', () => {
    const spec = normalize({ image: 'x' });
    expect(redactSpec(spec)).toEqual(spec);
    expect(redactSpec(spec).registryAuth).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------

describe('canonicalJson', () => {
  it('does not depend on key order, at any depth', () => {
    const a = { b: 1, a: { d: 2, c: [3, { f: 1, e: 'two' }] } };
    const b = { a: { c: [3, { e: 'two', f: 1 }], d: 2 }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"a":{"c":[3,{"e":"two","f":1}],"d":2},"b":1}');
  });

  it('is valid JSON for the same value', () => {
    const v = { z: [null, true, 'q"uote', 1.5], y: {} };
    expect(JSON.parse(canonicalJson(v))).toEqual(v);
  });

  it('keeps array order', () => {
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });

  it('serializes primitives like JSON.stringify', () => {
    expect(canonicalJson('a"b')).toBe('"a\\"b"');
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(7)).toBe('7');
    expect(canonicalJson(false)).toBe('false');
  });
});

describe('containerSpecHash', () => {
  const base = normalize({
    image: 'nginx:1.25',
    command: ['nginx', '-g', 'daemon off;'],
    env: { A: '1', B: '2' },
    ports: [{ containerPort: 80, hostPort: 8080 }],
    resources: { cpus: 1, memoryMB: 128 },
    labels: { team: 'edge' },
    registryAuth: { username: 'u', password: 'p' },
  });
  const hashOf = (spec: NormalizedSpec) => containerSpecHash(containerSpecOf(spec));
  const baseHash = hashOf(base);

  it('is a short stable hex string', () => {
    expect(baseHash).toMatch(/^[0-9a-f]{16}$/);
    expect(hashOf(structuredClone(base))).toBe(baseHash);
  });

  it('is equal when only the order of env keys differs', () => {
    expect(hashOf({ ...base, env: { B: '2', A: '1' } })).toBe(baseHash);
  });

  it.each<[string, Partial<ContainerSpec>]>([
    ['image', { image: 'nginx:1.26' }],
    ['command', { command: ['nginx'] }],
    ['command (null)', { command: null }],
    ['env value', { env: { A: '1', B: '3' } }],
    ['env key added', { env: { A: '1', B: '2', C: '' } }],
    ['ports', { ports: [{ containerPort: 80, hostPort: 8081, protocol: 'tcp' }] }],
    ['port protocol', { ports: [{ containerPort: 80, hostPort: 8080, protocol: 'udp' }] }],
    ['resources', { resources: { cpus: 2, memoryMB: 128 } }],
    ['labels', { labels: { team: 'core' } }],
  ])('changes when %s changes', (_, change) => {
    expect(containerSpecHash({ ...containerSpecOf(base), ...change })).not.toBe(baseHash);
  });

  it('does not change when only registryAuth changes', () => {
    expect(hashOf({ ...base, registryAuth: { username: 'other', password: 'rotated', serveraddress: 'r.example' } })).toBe(baseHash);
    expect(hashOf({ ...base, registryAuth: null })).toBe(baseHash);
  });

  it('does not change with replicas, mode or constraints (they are not part of a container)', () => {
    expect(hashOf({ ...base, replicas: 7, constraints: ['node.os == linux'] })).toBe(baseHash);
    expect(hashOf({ ...base, mode: 'global', replicas: 0 })).toBe(baseHash);
  });
});

describe('constraint typos', () => {
  it.each(['node.labels.zone === eu', 'node.arch !== arm', 'node.labels.zone ==='])('refuses %s', async (text) => {
    const { parseConstraint } = await import('../../hub/spec/constraints.js');
    expect(parseConstraint(text)).toHaveProperty('error');
  });
});
