/**
 * A join whose two writes (the token's use, the node) do not both land is undone, and the undo
 * itself must land: a node left behind would hold a credential no device has, for good.
 */
import { describe, expect, it, vi } from 'vitest';
import { JoinTokens } from '../../hub/join-tokens.js';
import { NodeDirectory } from '../../hub/node-directory.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { silentLogger } from '../helpers/silent-logger.js';
import { tempStores } from '../helpers/temp-stores.js';

const stores = tempStores('tether-join-undo-');

describe('a join that fails halfway', () => {
  it('removes the node it wrote even when the first removal fails too, on disk as in memory', async () => {
    const faults = { tokenWrites: false, nodeWritesToFail: 0 };
    const beforeWrite = (file: string): void => {
      const fail = () => {
        throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
      };
      if (file.includes('join-tokens') && faults.tokenWrites) fail();
      if (file.includes('nodes') && faults.nodeWritesToFail > 0) {
        faults.nodeWritesToFail--;
        fail();
      }
    };
    const store = stores.keep(new LowdbStore({ dir: stores.dir, beforeWrite }));
    await store.open();
    const tokens = new JoinTokens({ store, logger: silentLogger });
    const directory = new NodeDirectory(store, silentLogger, () => undefined, tokens, { removalRetryBaseMs: 20 });
    // A token with a limit: its use is durable before the join answers (one without a limit
    // counts its uses lazily, and a join does not wait for that write).
    const { token } = await tokens.create({ ttlMs: 600_000, uses: 5 });

    faults.tokenWrites = true;
    const joining = directory.join(token, 'edge-1', {});
    // The node's write lands; the token's fails; then the undo's first removal of the node fails too.
    await new Promise((r) => setImmediate(r));
    faults.nodeWritesToFail = 1;
    await expect(joining).rejects.toThrow(/ENOSPC/);
    faults.tokenWrites = false;

    await vi.waitFor(() => expect([...store.listNodes()]).toHaveLength(0), { timeout: 5_000, interval: 20 });
    // And on disk: the store opened again finds no node.
    await store.close();
    const again = stores.keep(new LowdbStore({ dir: stores.dir }));
    await again.open();
    expect([...again.listNodes()]).toHaveLength(0);
  });

  it('joins with a token without a limit although its use count cannot be written yet, and writes the count once it can', async () => {
    const faults = { tokenWrites: false };
    let tokenFileWrites = 0;
    let tokenWritesFailed = 0;
    const beforeWrite = (file: string): void => {
      if (!file.includes('join-tokens')) return;
      tokenFileWrites++;
      if (!faults.tokenWrites) return;
      tokenWritesFailed++;
      throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
    };
    const store = stores.keep(new LowdbStore({ dir: stores.dir, beforeWrite }));
    await store.open();
    const tokens = new JoinTokens({ store, logger: silentLogger });
    const directory = new NodeDirectory(store, silentLogger, () => undefined, tokens);
    const { id, token } = await tokens.create({ ttlMs: 600_000 });

    // A fleet installing: joins one after another (as they come over HTTP), whose uses share
    // writes rather than one each.
    tokenFileWrites = 0;
    for (let i = 0; i < 20; i++) await directory.join(token, `edge-${i}`, {});
    await vi.waitFor(() => expect(tokenFileWrites).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    expect(tokenFileWrites).toBeLessThanOrEqual(2);

    // A count that cannot be written does not stop joins; it is written once the disk takes it.
    faults.tokenWrites = true;
    await directory.join(token, 'edge-20', {});
    expect((await tokens.list()).find((t) => t.id === id)?.used).toBe(21);
    // The count's write is tried, and fails, while the disk refuses it; the store tries again.
    await vi.waitFor(() => expect(tokenWritesFailed).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
    faults.tokenWrites = false;
    await store.close();
    const again = stores.keep(new LowdbStore({ dir: stores.dir }));
    await again.open();
    expect([...again.listJoinTokens()][0]?.used).toBe(21);
    expect([...again.listNodes()]).toHaveLength(21);
  });
});
