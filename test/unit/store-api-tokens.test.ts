import { describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { ApiTokenRecord, StoreChange } from '../../hub/store/store.js';
import { tempStores } from '../helpers/temp-stores.js';

const stores = tempStores('tether-store-api-tokens-');

function apiToken(id: string, extra: Partial<ApiTokenRecord> = {}): ApiTokenRecord {
  return { id, name: `ci-${id}`, role: 'operator', secretHash: 'ab'.repeat(32), createdAt: '2026-01-01T00:00:00.000Z', expiresAt: null, ...extra };
}

async function open(): Promise<LowdbStore> {
  const store = stores.keep(new LowdbStore({ dir: stores.dir, nodeShards: 2, serviceShards: 2 }));
  await store.open();
  return store;
}

describe('LowdbStore: API tokens', () => {
  it('keeps them across a reopen, by id, and forgets a deleted one for good', async () => {
    const store = await open();
    const changes: StoreChange['collection'][] = [];
    store.subscribe((change) => changes.push(change.collection));
    await store.putApiToken(apiToken('a1'));
    await store.putApiToken(apiToken('b2', { role: 'viewer', expiresAt: '2026-02-01T00:00:00.000Z' }));
    await store.deleteApiToken('a1');
    expect(changes).toEqual(['apiTokens', 'apiTokens', 'apiTokens']);
    await stores.closeAll();

    const reopened = await open();
    expect(reopened.getApiToken('a1')).toBeUndefined();
    expect(reopened.getApiToken('b2')).toEqual(apiToken('b2', { role: 'viewer', expiresAt: '2026-02-01T00:00:00.000Z' }));
    expect([...reopened.listApiTokens()].map((t) => t.id)).toEqual(['b2']);
    // A collection of its own, next to the join tokens.
    expect((await readdir(stores.dir)).filter((f) => f.startsWith('api-tokens'))).not.toEqual([]);
  });
});
