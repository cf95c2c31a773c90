import { describe, expect, it } from 'vitest';
import { imagesToRemove, previousImageFor } from '../../agent/reconciler/image-retention.js';
import type { ObservedContainer } from '../../agent/runtime/container-runtime.js';

const container = (id: string, service: string, image: string, previousImage: string | null = null): ObservedContainer => ({
  id,
  name: id,
  replicaId: `r-${id}`,
  service,
  specHash: `h-${image}`,
  state: 'running',
  exitCode: null,
  restartCount: 0,
  error: null,
  image,
  previousImage,
});
const byId = (...cs: ObservedContainer[]) => new Map(cs.map((c) => [c.id, c]));

describe('the image a new container keeps beside its own', () => {
  it('is the image of the container it replaces', () => {
    const planned = byId(container('old', 'web', 'app:1'));
    expect(previousImageFor('web', 'app:2', { oldIds: ['old'], fallbackId: 'old' }, planned)).toBe('app:1');
  });

  it('carries the kept one on when the replaced container runs the same image (a change of command)', () => {
    const planned = byId(container('old', 'web', 'app:2', 'app:1'));
    expect(previousImageFor('web', 'app:2', { oldIds: ['old'], fallbackId: null }, planned)).toBe('app:1');
  });

  it('without a swap (a start-first replacement), is the image of another container of the service on the node', () => {
    const planned = byId(container('other', 'db', 'db:1'), container('old', 'web', 'app:1'));
    expect(previousImageFor('web', 'app:2', null, planned)).toBe('app:1');
    expect(previousImageFor('cache', 'cache:1', null, planned)).toBeNull();
  });
});

describe('the released images to remove', () => {
  it('are those no container refers to and no replica wants', () => {
    expect(imagesToRemove(['a', 'b', 'c', 'd'], new Set(['a']), new Set(['b']))).toEqual(['c', 'd']);
  });
});
