import { createHash } from 'node:crypto';
import type { NormalizedSpec } from './spec.js';

/** What one replica's container needs: the part of a service spec an agent acts on. */
export type ContainerSpec = Pick<NormalizedSpec, 'image' | 'command' | 'env' | 'ports' | 'resources' | 'labels' | 'registryAuth'>;

export function containerSpecOf(spec: NormalizedSpec): ContainerSpec {
  return {
    image: spec.image,
    command: spec.command,
    env: spec.env,
    ports: spec.ports,
    resources: spec.resources,
    labels: spec.labels,
    registryAuth: spec.registryAuth,
  };
}

/** JSON with object keys sorted, so equal values always serialize to the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Hash of what makes a container what it is. Scaling, constraints and registry credentials are
 * left out: changing them must not replace running containers.
 */
export function containerSpecHash(spec: ContainerSpec): string {
  const { registryAuth: _credentials, ...identity } = spec;
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 16);
}
