import type { ContainerSpec } from '../../shared/container-spec.js';

/** A container spec with nothing set but the image, and what a test overrides. */
export function containerSpec(image: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    image,
    command: null,
    env: {},
    ports: [],
    resources: { cpus: null, memoryMB: null },
    labels: {},
    registryAuth: null,
    ...overrides,
  };
}
