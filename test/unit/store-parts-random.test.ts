/**
 * Random writes of records with items (inserted, removed, moved, changed, duplicated, the same
 * object twice, runs inserted at one place, ids that look like the store's own suffixes), some
 * refused by the disk, some deletes, and restarts: after every flush a store opened on the same
 * files holds what memory holds. Order keys go fractional and negative along the way.
 */
import { describe, expect, it } from 'vitest';
import { ShardedCollection } from '../../hub/store/sharded-collection.js';
import type { RecordLayout } from '../../hub/store/record-layout.js';
import { prng } from '../helpers/prng.js';
import { tempStores } from '../helpers/temp-stores.js';

interface Item {
  id: string;
  v: number;
  pad?: string;
}
interface Rec {
  k: string;
  rev: number;
  items: Item[];
}
const layout: RecordLayout<Rec> = {
  main: ({ items: _items, ...main }) => main,
  items: (r) => r.items,
  itemId: (x) => (x as Item).id,
  assemble: (main, items) => ({ ...(main as Omit<Rec, 'items'>), items: items as Item[] }),
};

const stores = tempStores('tether-parts-random-');
const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];

describe('Store: records with items through random writes, refusals and restarts', () => {
  for (const seed of [11, 12, 13]) {
    it(`loads back what memory holds after every flush (seed ${seed})`, async () => {
      const rand = prng(seed);
      const control = { failShare: 0 };
      const open = async () => {
        const c = new ShardedCollection<Rec>(stores.dir, 'svc', 2, {
          keyField: 'k',
          layout,
          beforeWrite: async () => {
            if (rand() < 0.5) await new Promise((r) => setImmediate(r));
            if (rand() < control.failShare) throw Object.assign(new Error('simulated'), { code: 'EIO' });
          },
        });
        await c.open();
        return c;
      };
      let c = await open();
      let nextId = 0;
      const pad = 'x'.repeat(seed % 2 ? 200 : 5);
      for (let step = 0; step < 300; step++) {
        // Bursts of refused writes: their undo must leave memory as the disk has it.
        control.failShare = step % 50 < 20 ? 0.3 : 0;
        const ops: Array<Promise<unknown>> = [];
        for (let p = 1 + Math.floor(rand() * 3); p > 0; p--) {
          const k = KEYS[Math.floor(rand() * KEYS.length)]!;
          const current = c.get(k);
          if (current && rand() < 0.03) {
            ops.push(c.delete(k).catch(() => undefined));
            continue;
          }
          const items = current ? [...current.items] : [];
          const at = (extra = 1) => Math.floor(rand() * (items.length + extra));
          const op = rand();
          if (op < 0.25) items.splice(at(), 0, { id: `i${nextId++}`, v: 0, pad });
          else if (op < 0.4 && items.length > 0) items.splice(at(0), 1);
          else if (op < 0.55 && items.length > 1) items.splice(at(0), 0, ...items.splice(at(0), 1));
          else if (op < 0.65 && items.length > 0) {
            const i = at(0);
            items[i] = { ...items[i]!, v: items[i]!.v + 1 };
          } else if (op < 0.72 && items.length > 0) items.splice(at(), 0, { ...items[at(0)]!, v: 100 + step });
          else if (op < 0.78 && items.length > 0) items.splice(at(0), 0, { id: `i${nextId++}`, v: -1 });
          else if (op < 0.82) items.reverse();
          else if (op < 0.86 && items.length > 0) items.unshift(items[items.length - 1]!);
          for (let m = 0; m < 3 && rand() < 0.5; m++) items.splice(at(), 0, { id: `i${nextId++}`, v: 0 });
          if (rand() < 0.1) items.unshift({ id: items.length > 0 ? `${items[0]!.id}~1` : 'z~1', v: 7 });
          ops.push(c.put(k, { k, rev: step, items }).catch(() => undefined));
          if (rand() < 0.5) await new Promise((r) => setImmediate(r));
        }
        await Promise.all(ops);
        control.failShare = 0;
        await c.flush();
        if (rand() < 0.2) {
          const inMemory = Object.fromEntries(KEYS.map((k) => [k, structuredClone(c.get(k))]));
          const reopened = await open();
          expect(Object.fromEntries(KEYS.map((k) => [k, structuredClone(reopened.get(k))])), `step ${step}`).toEqual(inMemory);
          if (rand() < 0.5) c = reopened;
        }
      }
    });
  }
});
