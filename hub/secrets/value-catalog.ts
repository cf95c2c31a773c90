import type { ValueSource } from '../../shared/container-spec.js';
import { MAX_SERVICE_VALUE_BYTES, type ValueCatalog } from '../spec/mounts.js';
import type { Store } from '../store/store.js';
import type { NamedValues, UsedByLookup } from './named-values.js';

/**
 * The hub's configs and secrets as specs and targets see them: which versions it holds (for a
 * spec's references) and their bytes (for the targets of nodes whose replicas name them).
 */
export class HubValues implements ValueCatalog {
  constructor(
    private readonly configs: NamedValues<'config'>,
    private readonly secrets: NamedValues<'secret'>,
  ) {}

  private of(source: ValueSource): NamedValues<'config'> | NamedValues<'secret'> {
    return source === 'config' ? this.configs : this.secrets;
  }

  currentVersion(source: ValueSource, name: string): number | undefined {
    return this.of(source).currentVersion(name);
  }

  holds(source: ValueSource, name: string, version: number): boolean {
    return this.of(source).holdsVersion(name, version);
  }

  sizeOf(source: ValueSource, name: string): number | undefined {
    return this.of(source).get(name)?.size;
  }

  /** The value's bytes as base64 for a target; undefined when that version is no longer held. */
  base64Of(source: ValueSource, name: string, version: number): string | undefined {
    return this.of(source).valueOf(name, version)?.toString('base64');
  }
}

/**
 * Which services' current specs name a config or secret (as a file or an environment value). A
 * walk over the services: asked only by the API's views and deletes, never per frame.
 */
export function valueUsers(store: Pick<Store, 'listServices'>): UsedByLookup {
  return (kind, name) => {
    const users: string[] = [];
    for (const { name: service, spec } of store.listServices()) {
      const named = (spec.files ?? []).some((f) => f.source === kind && f.name === name) || Object.values(spec.envFrom ?? {}).some((e) => e.source === kind && e.name === name);
      if (named) users.push(service);
    }
    return users.sort();
  };
}

/**
 * Why a new value of `size` bytes for a config or secret would take a service that names it past
 * MAX_SERVICE_VALUE_BYTES (every node running it receives them all); null when none.
 */
export function serviceValueLimit(store: Pick<Store, 'listServices'>, values: Pick<HubValues, 'sizeOf'>) {
  return (kind: ValueSource, name: string, size: number): string | null => {
    for (const { name: service, spec } of store.listServices()) {
      const named = new Map<string, { source: ValueSource; name: string }>();
      for (const ref of [...(spec.files ?? []), ...Object.values(spec.envFrom ?? {})]) named.set(`${ref.source}\0${ref.name}`, ref);
      if (!named.has(`${kind}\0${name}`)) continue;
      let total = 0;
      for (const ref of named.values()) total += ref.source === kind && ref.name === name ? size : (values.sizeOf(ref.source, ref.name) ?? 0);
      if (total > MAX_SERVICE_VALUE_BYTES) {
        return `service "${service}" names it, and its configs and secrets would total ${total} bytes; at most ${MAX_SERVICE_VALUE_BYTES} (4 MiB) in all`;
      }
    }
    return null;
  };
}
