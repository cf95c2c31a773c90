import { describe, expect, it } from 'vitest';
import { resolveEnv } from '../../agent/values/env-from.js';
import { MissingValueError, NodeValues } from '../../agent/values/node-values.js';
import type { ContainerSpec } from '../../shared/container-spec.js';

const spec = (over: Partial<ContainerSpec>): ContainerSpec => ({
  image: 'busybox:1',
  command: null,
  env: { PLAIN: 'yes' },
  ports: [],
  resources: { cpus: null, memoryMB: null },
  labels: {},
  registryAuth: null,
  ...over,
});
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

describe('environment from configs and secrets', () => {
  const values = new NodeValues();
  values.replace([
    { source: 'secret', name: 'db', version: 3, data: b64('pässword') },
    { source: 'config', name: 'site', version: 1, data: b64('shop-17') },
    { source: 'secret', name: 'blob', version: 1, data: b64(Buffer.from([0xff, 0xfe])) },
  ]);

  it('gives each reference the text of the version it names, beside the plain values', () => {
    const env = resolveEnv(
      spec({ envFrom: { DB_PASSWORD: { source: 'secret', name: 'db', version: 3 }, SITE: { source: 'config', name: 'site', version: 1 } } }),
      values,
    );
    expect(env).toEqual({ PLAIN: 'yes', DB_PASSWORD: 'pässword', SITE: 'shop-17' });
  });

  it('fails clearly for a version this node does not hold, never saying any value', () => {
    const run = () => resolveEnv(spec({ envFrom: { DB: { source: 'secret', name: 'db', version: 4 } } }), values);
    expect(run).toThrow(MissingValueError);
    expect(run).toThrow(/^secret db version 4 is not on this node: /);
  });

  it('refuses a value that is not UTF-8 text', () => {
    expect(() => resolveEnv(spec({ envFrom: { B: { source: 'secret', name: 'blob', version: 1 } } }), values)).toThrow(/secret blob version 1 is not UTF-8 text/);
  });

  it('holds only what the last target carried', () => {
    const held = new NodeValues();
    held.replace([{ source: 'config', name: 'site', version: 1, data: b64('a') }]);
    held.replace([{ source: 'config', name: 'site', version: 2, data: b64('b') }]);
    expect(held.size).toBe(1);
    expect(held.get({ source: 'config', name: 'site', version: 1 })).toBeUndefined();
    expect(held.get({ source: 'config', name: 'site', version: 2 })?.toString()).toBe('b');
  });
});
