import { describe, expect, it } from 'vitest';
import { MAX_PULL_LAYERS, PullProgressTally } from '../../agent/runtime/pull-progress.js';

/** Lines as the engine writes them while it pulls an image of three layers, one already present. */
const layer = (id: string, status: string, current?: number, total?: number) =>
  current === undefined ? { status, progressDetail: {}, id } : { status, progressDetail: { current, total }, id };

describe('pull progress from the engine lines', () => {
  it('counts bytes downloaded of the layers sizes and layers done, through every stage of a layer', () => {
    const t = new PullProgressTally();
    t.add({ status: 'Pulling from busybox', id: '2' });
    t.add(layer('aaa', 'Already exists'));
    t.add(layer('bbb', 'Pulling fs layer'));
    t.add(layer('ccc', 'Pulling fs layer'));
    // Sizes are not known before each layer starts downloading.
    expect(t.snapshot()).toEqual({ bytesDone: 0, bytesTotal: null, layersDone: 1, layersTotal: 3 });
    t.add(layer('bbb', 'Downloading', 1000, 4000));
    t.add(layer('ccc', 'Waiting'));
    expect(t.snapshot()).toEqual({ bytesDone: 1000, bytesTotal: null, layersDone: 1, layersTotal: 3 });
    t.add(layer('ccc', 'Downloading', 500, 2000));
    expect(t.snapshot()).toEqual({ bytesDone: 1500, bytesTotal: 6000, layersDone: 1, layersTotal: 3 });
    t.add(layer('bbb', 'Verifying Checksum'));
    t.add(layer('bbb', 'Download complete'));
    // Extracting counts bytes extracted: the layer's download stays whole.
    t.add(layer('bbb', 'Extracting', 10, 4000));
    expect(t.snapshot()).toEqual({ bytesDone: 4500, bytesTotal: 6000, layersDone: 1, layersTotal: 3 });
    t.add(layer('bbb', 'Pull complete'));
    t.add(layer('ccc', 'Downloading', 2000, 2000));
    t.add(layer('ccc', 'Pull complete'));
    t.add({ status: 'Digest: sha256:8950e06421a67027af8ea6643989ff21425914e310647e78ad9425c7ce219042' });
    t.add({ status: 'Status: Downloaded newer image for 127.0.0.1:5000/busybox:2' });
    expect(t.snapshot()).toEqual({ bytesDone: 6000, bytesTotal: 6000, layersDone: 3, layersTotal: 3 });
  });

  it('a layer that completes without a size line counts what it downloaded, and the total becomes known', () => {
    const t = new PullProgressTally();
    t.add(layer('a', 'Pulling fs layer'));
    t.add(layer('a', 'Download complete'));
    expect(t.snapshot()).toEqual({ bytesDone: 0, bytesTotal: 0, layersDone: 0, layersTotal: 1 });
    t.add(layer('a', 'Pull complete'));
    expect(t.snapshot()).toEqual({ bytesDone: 0, bytesTotal: 0, layersDone: 1, layersTotal: 1 });
  });

  it('ignores what is not a layer line and numbers that are not byte counts, and never goes backwards', () => {
    const t = new PullProgressTally();
    for (const junk of [null, 'text', 42, [], { id: 5, status: 'Downloading' }, { id: 'x' }, { id: 'x', status: 'Something new' }]) t.add(junk);
    expect(t.snapshot()).toEqual({ bytesDone: 0, bytesTotal: 0, layersDone: 0, layersTotal: 0 });
    t.add(layer('a', 'Downloading', 300, 1000));
    t.add(layer('a', 'Downloading', 200, 1000)); // a retried request starts again: the count keeps its best
    t.add({ id: 'a', status: 'Downloading', progressDetail: { current: -5, total: 1.5 } });
    t.add({ id: 'a', status: 'Downloading', progressDetail: { current: '9', total: null } });
    expect(t.snapshot()).toEqual({ bytesDone: 300, bytesTotal: 1000, layersDone: 0, layersTotal: 1 });
  });

  it('never counts more of a layer than its size (a retried download counting on)', () => {
    const t = new PullProgressTally();
    t.add(layer('a', 'Downloading', 1500, 1000));
    expect(t.snapshot()).toEqual({ bytesDone: 1000, bytesTotal: 1000, layersDone: 0, layersTotal: 1 });
  });

  it('tracks at most MAX_PULL_LAYERS layers, whatever the engine sends', () => {
    const t = new PullProgressTally();
    for (let i = 0; i < MAX_PULL_LAYERS + 50; i++) t.add(layer(`l${i}`, 'Already exists'));
    expect(t.snapshot().layersTotal).toBe(MAX_PULL_LAYERS);
  });
});
