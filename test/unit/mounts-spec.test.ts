import { describe, expect, it } from 'vitest';
import { normalizeAllowedHostPath, pinnedToCurrent, type ValueCatalog } from '../../hub/spec/mounts.js';
import { minProtocolVersionOf, MOUNTS_PROTOCOL_VERSION } from '../../hub/scheduler/feasibility.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

/** Holds secret "db" at version 3 (and 2 before it) and config "site" at version 1. */
const catalog: ValueCatalog = {
  currentVersion: (source, name) => (source === 'secret' && name === 'db' ? 3 : source === 'config' && name === 'site' ? 1 : undefined),
  holds: (source, name, version) => (source === 'secret' && name === 'db' ? version === 3 || version === 2 : source === 'config' && name === 'site' && version === 1),
};

const errorsOf = (input: object, ctx = { values: catalog }) => {
  const v = validateServiceSpec({ image: 'app:1', ...input }, ctx);
  return v.ok ? [] : v.errors;
};

describe('a spec naming configs and secrets', () => {
  it('pins each to its current version, with Swarm-like defaults for files', () => {
    const v = validateServiceSpec(
      {
        image: 'app:1',
        secrets: [{ name: 'db' }, { name: 'db', target: '/etc/db-password', mode: '0400', uid: 1000, gid: 1000 }],
        configs: [{ name: 'site', target: '/etc/site.conf' }],
        env: { PLAIN: 'x', DB: { fromSecret: 'db' }, SITE: { fromConfig: 'site' } },
      },
      { values: catalog },
    );
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.value.files).toEqual([
      { source: 'secret', name: 'db', version: 3, target: '/run/secrets/db', mode: 0o444, uid: 0, gid: 0 },
      { source: 'secret', name: 'db', version: 3, target: '/etc/db-password', mode: 0o400, uid: 1000, gid: 1000 },
      { source: 'config', name: 'site', version: 1, target: '/etc/site.conf', mode: 0o444, uid: 0, gid: 0 },
    ]);
    expect(v.value.env).toEqual({ PLAIN: 'x' });
    expect(v.value.envFrom).toEqual({ DB: { source: 'secret', name: 'db', version: 3 }, SITE: { source: 'config', name: 'site', version: 1 } });
  });

  it('leaves the fields out of a spec that names none (its container hash stays as before)', () => {
    const v = validateServiceSpec({ image: 'app:1', env: { A: 'b' } });
    expect(v.ok && Object.keys(v.value).filter((k) => ['files', 'envFrom', 'volumes', 'tmpfs', 'binds'].includes(k))).toEqual([]);
  });

  it('refuses a name the hub does not hold, naming the field', () => {
    expect(errorsOf({ secrets: [{ name: 'nope' }] })).toEqual([{ path: 'secrets[0].name', message: expect.stringMatching(/no secret named "nope" exists/) }]);
    expect(errorsOf({ configs: [{ name: 'db', target: '/x' }] })).toEqual([{ path: 'configs[0].name', message: expect.stringMatching(/no config named "db"/) }]);
    expect(errorsOf({ env: { A: { fromSecret: 'site' } } })).toEqual([{ path: 'env.A', message: expect.stringMatching(/no secret named "site"/) }]);
    // Without a catalog nothing exists.
    expect(errorsOf({ secrets: [{ name: 'db' }] }, { values: undefined as never })).toHaveLength(1);
  });

  it('refuses bad names, modes and targets, each naming its field', () => {
    expect(errorsOf({ secrets: [{ name: 'DB' }] })[0]?.path).toBe('secrets[0].name');
    expect(errorsOf({ secrets: [{ name: 'db', mode: '0999' }] })).toEqual([{ path: 'secrets[0].mode', message: expect.stringMatching(/octal/) }]);
    expect(errorsOf({ secrets: [{ name: 'db', mode: '644x' }] })[0]?.path).toBe('secrets[0].mode');
    expect(errorsOf({ secrets: [{ name: 'db', target: 'run/db' }] })).toEqual([{ path: 'secrets[0].target', message: expect.stringMatching(/absolute/) }]);
    expect(errorsOf({ secrets: [{ name: 'db', target: '/run/../../etc/passwd' }] })).toEqual([{ path: 'secrets[0].target', message: expect.stringMatching(/inside the container/) }]);
    expect(errorsOf({ configs: [{ name: 'site', target: '/' }] })[0]?.path).toBe('configs[0].target');
    expect(errorsOf({ configs: [{ name: 'site', target: '/etc//x' }] })[0]?.message).toMatch(/normalized/);
    expect(errorsOf({ env: { A: { fromSecret: 'db', extra: 1 } } }).length).toBeGreaterThan(0);
  });

  it('refuses two mounts at one path, naming the second and the first', () => {
    const errors = errorsOf({ secrets: [{ name: 'db', target: '/data' }], volumes: [{ name: 'data', target: '/data' }] });
    expect(errors).toEqual([{ path: 'volumes[0].target', message: '"/data" is already mounted by secrets[0].target' }]);
    expect(errorsOf({ secrets: [{ name: 'db' }, { name: 'db' }] })[0]).toMatchObject({ path: 'secrets[1].target' });
    expect(errorsOf({ volumes: [{ name: 'a', target: '/a' }, { name: 'a', target: '/b' }] })[0]).toMatchObject({ path: 'volumes[1].name' });
  });
});

describe('volumes, tmpfs and host paths in a spec', () => {
  it('normalizes them, and a service with a volume waits for a lost node by default', () => {
    const v = validateServiceSpec({ image: 'app:1', volumes: [{ name: 'data', target: '/data' }], tmpfs: [{ target: '/scratch', sizeMB: 64, mode: '0700' }] });
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.value.volumes).toEqual([{ name: 'data', target: '/data', readOnly: false }]);
    expect(v.value.tmpfs).toEqual([{ target: '/scratch', sizeBytes: 64 * 1024 * 1024, mode: 0o700 }]);
    expect(v.value.onNodeLost).toBe('wait');
    const chosen = validateServiceSpec({ image: 'app:1', volumes: [{ name: 'data', target: '/data' }], onNodeLost: 'reschedule' });
    expect(chosen.ok && chosen.value.onNodeLost).toBe('reschedule');
  });

  it('takes a host path only under the hub\'s allow-list', () => {
    const bind = { binds: [{ hostPath: '/data/app', target: '/app', readOnly: true }] };
    expect(errorsOf(bind)).toEqual([{ path: 'binds[0].hostPath', message: expect.stringMatching(/--allow-host-path/) }]);
    expect(errorsOf(bind, { values: catalog, allowedHostPaths: ['/srv'] } as never)).toEqual([{ path: 'binds[0].hostPath', message: expect.stringMatching(/not under a path the hub allows/) }]);
    // "/data-other" is not under "/data".
    expect(errorsOf({ binds: [{ hostPath: '/data-other', target: '/app' }] }, { values: catalog, allowedHostPaths: ['/data'] } as never)).toHaveLength(1);
    expect(errorsOf({ binds: [{ hostPath: '/data/../etc', target: '/app' }] }, { values: catalog, allowedHostPaths: ['/data'] } as never)).toHaveLength(1);
    const ok = validateServiceSpec({ image: 'app:1', ...bind }, { allowedHostPaths: ['/data'] });
    expect(ok.ok && ok.value.binds).toEqual([{ hostPath: '/data/app', target: '/app', readOnly: true }]);
  });

  it('normalizes an allow-list entry', () => {
    expect(normalizeAllowedHostPath('/data/')).toEqual({ ok: true, path: '/data' });
    expect(normalizeAllowedHostPath('data')).toMatchObject({ ok: false });
    expect(normalizeAllowedHostPath('/data/../etc')).toMatchObject({ ok: false });
  });
});

describe('pinnedToCurrent', () => {
  it('moves every reference to the version held now, and keeps the object when none moved', () => {
    const v = validateServiceSpec({ image: 'app:1', secrets: [{ name: 'db' }], env: { DB: { fromSecret: 'db' } } }, { values: catalog });
    if (!v.ok) throw new Error('invalid');
    expect(pinnedToCurrent(v.value, catalog)).toBe(v.value);
    const newer: ValueCatalog = { ...catalog, currentVersion: (s, n) => (s === 'secret' && n === 'db' ? 4 : catalog.currentVersion(s, n)) };
    const moved = pinnedToCurrent(v.value, newer);
    expect(moved.files?.[0]?.version).toBe(4);
    expect(moved.envFrom?.DB?.version).toBe(4);
    expect(v.value.files?.[0]?.version).toBe(3);
  });
});

describe('the protocol such containers need', () => {
  it('is 6 for a container with files, env references or mounts, and stays what it was without', () => {
    const withSecret = validateServiceSpec({ image: 'app:1', secrets: [{ name: 'db' }], restart: {} }, { values: catalog });
    const withTmpfs = validateServiceSpec({ image: 'app:1', tmpfs: [{ target: '/t', sizeMB: 1 }] });
    const plain = validateServiceSpec({ image: 'app:1', restart: {} });
    if (!withSecret.ok || !withTmpfs.ok || !plain.ok) throw new Error('invalid');
    expect(minProtocolVersionOf(withSecret.value)).toBe(MOUNTS_PROTOCOL_VERSION);
    expect(minProtocolVersionOf(withTmpfs.value)).toBe(6);
    expect(minProtocolVersionOf(plain.value)).toBe(4);
  });
});
