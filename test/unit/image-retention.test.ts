import { describe, expect, it } from 'vitest';
import { ImageRetention, imagesToRemove, previousImageFor } from '../../agent/reconciler/image-retention.js';
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

describe('ImageRetention', () => {
  function setup(inUse: string[]) {
    let nowMs = 0;
    const removed: string[] = [];
    const due: number[] = [];
    const retention = new ImageRetention({
      runtime: {
        imagesInUse: async () => ({ images: new Set(inUse) }),
        removeImage: async (image) => {
          removed.push(image);
          return 'removed';
        },
      },
      logger: { info() {}, warn() {} },
      nowMs: () => nowMs,
      graceMs: 10_000,
      onDue: () => due.push(nowMs),
    });
    return { retention, removed, at: (ms: number) => (nowMs = ms) };
  }

  it('removes a released image it pulled only once its grace is over (another agent may be about to use it)', async () => {
    const { retention, removed, at } = setup([]);
    retention.released({ pulledImages: ['app:1'] });
    at(1000);
    await retention.sweep(new Set());
    expect(removed).toEqual([]);
    at(10_000);
    await retention.sweep(new Set());
    expect(removed).toEqual(['app:1']);
    retention.close();
  });

  it('asks again for a removal the engine refused only once another grace period is over', async () => {
    let nowMs = 0;
    let calls = 0;
    const retention = new ImageRetention({
      runtime: {
        imagesInUse: async () => ({ images: new Set<string>() }),
        removeImage: async () => {
          calls++;
          throw new Error('engine busy');
        },
      },
      logger: { info() {}, warn() {} },
      nowMs: () => nowMs,
      graceMs: 10_000,
      onDue: () => undefined,
    });
    retention.released({ pulledImages: ['app:1'] });
    nowMs = 10_000;
    await retention.sweep(new Set());
    nowMs = 15_000;
    await retention.sweep(new Set());
    expect(calls).toBe(1);
    nowMs = 20_000;
    await retention.sweep(new Set());
    expect(calls).toBe(2);
    retention.close();
  });

  it('keeps one a container uses by then, or the target wants; releases nothing it did not pull', async () => {
    const { retention, removed, at } = setup(['app:1']);
    retention.released({ pulledImages: ['app:1', 'app:2'] });
    retention.released({ pulledImages: [] });
    retention.released(undefined);
    at(20_000);
    await retention.sweep(new Set(['app:2']));
    expect(removed).toEqual([]);
    retention.close();
  });
});
