import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, containerSpecHash, containerSpecOf } from '../../shared/container-spec.js';
import { errorsOf, normalize } from '../helpers/spec-validation.js';

const withCheck = (healthcheck: unknown) => ({ image: 'web:1', healthcheck });

describe('healthcheck: defaults', () => {
  it('fills in every default of an http check', () => {
    expect(normalize(withCheck({ type: 'http', port: 8080 })).healthcheck).toEqual({
      type: 'http',
      port: 8080,
      path: '/',
      statusMin: 200,
      statusMax: 399,
      command: null,
      intervalMs: 10_000,
      timeoutMs: 2_000,
      retries: 3,
      startPeriodMs: 0,
    });
  });

  it('takes every field of an http check as written', () => {
    const check = { type: 'http', port: 80, path: '/healthz', expectedStatus: '204', interval: '1m', timeout: '500ms', retries: 5, startPeriod: '30s' };
    expect(normalize(withCheck(check)).healthcheck).toEqual({
      type: 'http',
      port: 80,
      path: '/healthz',
      statusMin: 204,
      statusMax: 204,
      command: null,
      intervalMs: 60_000,
      timeoutMs: 500,
      retries: 5,
      startPeriodMs: 30_000,
    });
    expect(normalize(withCheck({ type: 'http', port: 80, expectedStatus: '200-299' })).healthcheck).toMatchObject({ statusMin: 200, statusMax: 299 });
    expect(normalize(withCheck({ type: 'http', port: 80, expectedStatus: 200 })).healthcheck).toMatchObject({ statusMin: 200, statusMax: 200 });
  });

  it('uses nulls for what tcp and exec checks do not read', () => {
    expect(normalize(withCheck({ type: 'tcp', port: 5432 })).healthcheck).toEqual({
      type: 'tcp',
      port: 5432,
      path: null,
      statusMin: null,
      statusMax: null,
      command: null,
      intervalMs: 10_000,
      timeoutMs: 2_000,
      retries: 3,
      startPeriodMs: 0,
    });
    expect(normalize(withCheck({ type: 'exec', command: ['pg_isready', '-q'] })).healthcheck).toMatchObject({
      type: 'exec',
      port: null,
      path: null,
      statusMin: null,
      statusMax: null,
      command: ['pg_isready', '-q'],
    });
  });

  it('leaves the property absent without a check, so a container keeps its hash', () => {
    const spec = normalize({ image: 'web:1', command: ['serve'], env: { A: '1' }, ports: [{ containerPort: 80, hostPort: 8080 }] });
    expect('healthcheck' in spec).toBe(false);
    expect('healthcheck' in containerSpecOf(spec)).toBe(false);
    // The hash as it was computed before health checks existed: the same fields, the same text.
    const { image, command, env, ports, resources, labels } = spec;
    const old = createHash('sha256').update(canonicalJson({ image, command, env, ports, resources, labels })).digest('hex').slice(0, 16);
    expect(containerSpecHash(containerSpecOf(spec))).toBe(old);
    // As computed by the code before health checks (the same spec, hashed there).
    expect(old).toBe('9e74a2f751fcaaf0');
  });

  it('gives a container with a check another hash (its containers are replaced to get it)', () => {
    const plain = normalize({ image: 'web:1' });
    const checked = normalize(withCheck({ type: 'tcp', port: 80 }));
    expect(containerSpecHash(containerSpecOf(checked))).not.toBe(containerSpecHash(containerSpecOf(plain)));
    expect(containerSpecOf(checked).healthcheck).toEqual(checked.healthcheck);
  });
});

describe('healthcheck: refusals name the field', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['http without a port', { type: 'http' }, 'healthcheck.port', /required for a "http" check/],
    ['tcp without a port', { type: 'tcp' }, 'healthcheck.port', /required for a "tcp" check/],
    ['a port of 0', { type: 'tcp', port: 0 }, 'healthcheck.port', /./],
    ['a port above 65535', { type: 'http', port: 65536 }, 'healthcheck.port', /./],
    ['exec without a command', { type: 'exec' }, 'healthcheck.command', /non-empty array/],
    ['exec with an empty command', { type: 'exec', command: [] }, 'healthcheck.command', /non-empty array/],
    ['exec with an empty program', { type: 'exec', command: [''] }, 'healthcheck.command[0]', /must not be empty/],
    ['a command on http', { type: 'http', port: 80, command: ['true'] }, 'healthcheck.command', /not used by a "http" check \(only "exec" checks use it\)/],
    ['a path on tcp', { type: 'tcp', port: 80, path: '/' }, 'healthcheck.path', /not used by a "tcp" check/],
    ['an expectedStatus on tcp', { type: 'tcp', port: 80, expectedStatus: '200' }, 'healthcheck.expectedStatus', /not used by a "tcp" check/],
    ['a port on exec', { type: 'exec', command: ['true'], port: 80 }, 'healthcheck.port', /only "http" and "tcp" checks use it/],
    ['a path not starting with /', { type: 'http', port: 80, path: 'healthz' }, 'healthcheck.path', /must start with "\/"/],
    ['an unknown type', { type: 'grpc', port: 80 }, 'healthcheck.type', /./],
    ['an unknown field', { type: 'tcp', port: 80, host: 'x' }, 'healthcheck.host', /unknown field/],
    ['a duration without a unit', { type: 'tcp', port: 80, interval: '10' }, 'healthcheck.interval', /not a duration/],
    ['a duration of two units', { type: 'tcp', port: 80, interval: '1m30s' }, 'healthcheck.interval', /not a duration/],
    ['an interval below 100ms', { type: 'tcp', port: 80, interval: '50ms', timeout: '50ms' }, 'healthcheck.interval', /between 100ms and 24h/],
    ['an interval above 24h', { type: 'tcp', port: 80, interval: '25h' }, 'healthcheck.interval', /between 100ms and 24h/],
    ['a startPeriod above 24h', { type: 'tcp', port: 80, startPeriod: '1441m' }, 'healthcheck.startPeriod', /between 0ms and 24h/],
    ['a timeout above the interval', { type: 'tcp', port: 80, interval: '1s', timeout: '2s' }, 'healthcheck.timeout', /must not exceed the interval \(2s > 1s\)/],
    ['a timeout above the default interval', { type: 'tcp', port: 80, timeout: '11s' }, 'healthcheck.timeout', /must not exceed the interval/],
    ['retries of 0', { type: 'tcp', port: 80, retries: 0 }, 'healthcheck.retries', /./],
    ['a status that is no code', { type: 'http', port: 80, expectedStatus: 'ok' }, 'healthcheck.expectedStatus', /not a status code or range/],
    ['a status below 100', { type: 'http', port: 80, expectedStatus: '099' }, 'healthcheck.expectedStatus', /between 100 and 599/],
    ['a status range past 599', { type: 'http', port: 80, expectedStatus: '200-600' }, 'healthcheck.expectedStatus', /between 100 and 599/],
    ['a status range upside down', { type: 'http', port: 80, expectedStatus: '299-200' }, 'healthcheck.expectedStatus', /low end must not exceed/],
  ];
  it.each(cases)('refuses %s', (_what, check, path, message) => {
    const errors = errorsOf(withCheck(check));
    const error = errors.find((e) => e.path === path);
    expect(error, JSON.stringify(errors)).toBeDefined();
    expect(error?.message).toMatch(message);
  });

  it('reports every mistake of one check at once', () => {
    const paths = errorsOf(withCheck({ type: 'tcp', path: '/', interval: 'soon' })).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['healthcheck.path', 'healthcheck.port', 'healthcheck.interval']));
  });
});
