import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ValueSealer } from '../secrets/master-keyring.js';
import type { ApiTokenRecord, ConfigRecord, JoinTokenRecord, NodeRecord, SecretRecord, ServiceRecord, ServiceTombstone, Store, StoreChange, StoreListener } from './store.js';
import { ShardedCollection, type CollectionOptions } from './sharded-collection.js';
import { StoreDamagedError, StoreFileDamagedError } from './store-file-damaged.js';
import { StoreHealthTracker, StoreWriteError } from './store-write-error.js';
import { withSharedParts } from '../node-interning.js';
import { nodeLayout, serviceLayout } from './layouts.js';
import { holdsClearPassword, sealedKeyIdsOf, ServiceSealing } from './sealed-services.js';
import { StoreKeyMismatchError } from './store-key-mismatch.js';

/** How often a failing store is probed again when its health is asked for. */
const HEALTH_RECHECK_INTERVAL_MS = 5_000;

/** What the start-up probe writes: about a small shard, so that a nearly full disk fails at start. */
const PROBE_BYTES = 64 * 1024;
/** Files of deleted services' revisions; fixed for the life of a data directory. */
const TOMBSTONE_SHARDS = 4;
/**
 * Files of configs and of secrets, each; fixed for the life of a data directory. Values run to
 * 512 KiB: several files keep a whole write of one from rewriting all the others.
 */
const VALUE_SHARDS = 8;

export interface LowdbStoreOptions {
  dir: string;
  /** Files per collection; fixed for the life of a data directory (keys hash into them). */
  nodeShards?: number;
  serviceShards?: number;
  /** Called before each store file write; throwing fails that write (fault injection in tests). */
  beforeWrite?: CollectionOptions['beforeWrite'];
  /**
   * Seals registry passwords in service records as they are written, and is checked at open
   * against every sealed value (a start with a wrong key fails with a StoreKeyMismatchError).
   * Without it, passwords are written as given, and a store holding sealed values does not open.
   */
  sealer?: ValueSealer;
}

/** The embedded store: lowdb JSON files under `<data-dir>/store`, sharded per collection. */
export class LowdbStore implements Store {
  private readonly nodes: ShardedCollection<NodeRecord>;
  private readonly services: ShardedCollection<ServiceRecord>;
  private readonly joinTokens: ShardedCollection<JoinTokenRecord>;
  private readonly apiTokens: ShardedCollection<ApiTokenRecord>;
  private readonly tombstones: ShardedCollection<ServiceTombstone>;
  private readonly configs: ShardedCollection<ConfigRecord>;
  private readonly secrets: ShardedCollection<SecretRecord>;
  /** Services are kept with their registry passwords sealed, and handed out in the clear. */
  private readonly sealing: ServiceSealing;
  private readonly healthTracker = new StoreHealthTracker();
  /** When a failing store may be probed again (see health). */
  private recheckAtMs = 0;
  private readonly listeners = new Set<StoreListener>();

  constructor(private readonly opts: LowdbStoreOptions) {
    this.sealing = new ServiceSealing(opts.sealer ?? null);
    const collection: Omit<CollectionOptions, 'layout' | 'readBack'> = { health: this.healthTracker, beforeWrite: opts.beforeWrite };
    const tell =
      (collection: StoreChange['collection']): CollectionOptions['onChange'] =>
      (key, before, after, written) => {
        if (this.listeners.size === 0) return;
        // Each collection holds the record type its name says (the union's pairs); subscribers
        // see services as the hub holds them, passwords in the clear.
        const plain = (record: unknown) => (collection === 'services' ? this.sealing.toPlain(record as ServiceRecord | undefined) : record);
        const change = { collection, key, before: plain(before), after: plain(after), written } as StoreChange;
        for (const listener of this.listeners) {
          try {
            listener(change);
          } catch (error) {
            // One listener's bug neither stops the others nor the store: it surfaces on its own.
            queueMicrotask(() => {
              throw error;
            });
          }
        }
      };
    // Each record carries its key: checked at read, so that a file of another collection is refused.
    this.nodes = new ShardedCollection<NodeRecord>(path.join(opts.dir, 'nodes'), 'nodes', opts.nodeShards ?? 64, { ...collection, keyField: 'id', layout: nodeLayout, readBack: withSharedParts, onChange: tell('nodes') });
    this.services = new ShardedCollection<ServiceRecord>(path.join(opts.dir, 'services'), 'services', opts.serviceShards ?? 64, { ...collection, keyField: 'name', layout: serviceLayout, onChange: tell('services') });
    this.joinTokens = new ShardedCollection<JoinTokenRecord>(opts.dir, 'join-tokens', 1, { ...collection, keyField: 'tokenHash', onChange: tell('joinTokens') });
    this.apiTokens = new ShardedCollection<ApiTokenRecord>(opts.dir, 'api-tokens', 1, { ...collection, keyField: 'id', onChange: tell('apiTokens') });
    // Few and small (one per name deleted and not created again): a handful of files is plenty.
    this.tombstones = new ShardedCollection<ServiceTombstone>(path.join(opts.dir, 'services'), 'deleted-services', TOMBSTONE_SHARDS, {
      ...collection,
      keyField: 'name',
      onChange: tell('serviceTombstones'),
    });
    this.configs = new ShardedCollection<ConfigRecord>(path.join(opts.dir, 'configs'), 'configs', VALUE_SHARDS, { ...collection, keyField: 'name', onChange: tell('configs') });
    this.secrets = new ShardedCollection<SecretRecord>(path.join(opts.dir, 'secrets'), 'secrets', VALUE_SHARDS, { ...collection, keyField: 'name', onChange: tell('secrets') });
  }

  subscribe(listener: StoreListener): () => void {
    // A wrapper of its own, so that one listener subscribed twice is told twice and stopped once each.
    const own: StoreListener = (change) => listener(change);
    this.listeners.add(own);
    return () => this.listeners.delete(own);
  }

  /**
   * Rejects with a StoreDamagedError naming every damaged file (the hub must not run without part
   * of its records), or with a StoreWriteError when the store cannot write (a full disk, say):
   * better at start than at the first API write.
   */
  async open(): Promise<void> {
    const outcomes = await Promise.allSettled(this.all().map((c) => c.open()));
    const damaged: StoreFileDamagedError[] = [];
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') continue;
      const error: unknown = outcome.reason;
      if (error instanceof StoreDamagedError) damaged.push(...error.files);
      else if (error instanceof StoreFileDamagedError) damaged.push(error);
      else throw error;
    }
    if (damaged.length > 0) throw new StoreDamagedError(damaged);
    this.checkKeys();
    await this.probeAll();
  }

  /**
   * Registry passwords a hub from before they were sealed wrote in the clear are sealed, and the
   * services' files written whole twice, so that no previous copy or change log keeps them. Once:
   * after that, none is in the clear. Not part of open(): the hub calls it only once the key is
   * durable (a generated master.key is written after the store opened), or a crash between the
   * two would leave the passwords sealed under a key nobody kept, and their clear copies erased.
   */
  async sealClearPasswords(): Promise<void> {
    if (!this.opts.sealer) return;
    const clear = [...this.services.values()].filter(holdsClearPassword);
    if (clear.length === 0) return;
    await Promise.all(clear.map((service) => this.putService(this.sealing.toPlain(service))));
    await this.services.rewriteWhole();
    await this.services.rewriteWhole();
  }

  /**
   * Every sealed value must be under a key the hub holds, and every registry password opens (a
   * damaged one fails here, at start, not when an agent needs it). Secrets are not decrypted:
   * their key ids say enough, and their values are needed only when sent on.
   */
  private checkKeys(): void {
    const unknown = new Set<string>();
    const check = (keyId: string) => {
      if (!this.opts.sealer?.knows(keyId)) unknown.add(keyId);
    };
    for (const secret of this.secrets.values()) {
      check(secret.sealed.keyId);
      if (secret.previous) check(secret.previous.sealed.keyId);
    }
    for (const service of this.services.values()) for (const keyId of sealedKeyIdsOf(service)) check(keyId);
    if (unknown.size > 0) throw new StoreKeyMismatchError([...unknown]);
    for (const service of this.services.values()) this.sealing.toPlain(service);
  }

  /** Every directory a collection writes into (each has its own permissions). */
  private async probeAll(): Promise<void> {
    for (const sub of ['', 'nodes', 'services', 'configs', 'secrets']) await this.probe(path.join(this.opts.dir, sub));
  }

  private async probe(dir: string): Promise<void> {
    const file = path.join(dir, '.write-probe');
    try {
      // The hook may answer later (a promise), as it may for any other write.
      await this.opts.beforeWrite?.(file);
      await writeFile(file, Buffer.alloc(PROBE_BYTES));
    } catch (error) {
      await unlink(file).catch(() => undefined);
      throw new StoreWriteError(file, error);
    }
    await unlink(file);
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((c) => c.flush()));
  }

  getNode(id: string) {
    return this.nodes.get(id);
  }
  listNodes() {
    return this.nodes.values();
  }
  putNode(node: NodeRecord, opts: { lazy?: boolean } = {}) {
    return this.nodes.put(node.id, node, opts.lazy === true);
  }
  deleteNode(id: string) {
    return this.nodes.delete(id);
  }

  getService(name: string) {
    return this.sealing.toPlain(this.services.get(name));
  }
  *listServices(): Iterable<ServiceRecord> {
    for (const service of this.services.values()) yield this.sealing.toPlain(service);
  }
  putService(service: ServiceRecord) {
    return this.services.put(service.name, this.sealing.toStored(service));
  }
  deleteService(name: string) {
    return this.services.delete(name);
  }

  getServiceTombstone(name: string) {
    return this.tombstones.get(name);
  }
  putServiceTombstone(tombstone: ServiceTombstone) {
    return this.tombstones.put(tombstone.name, tombstone);
  }
  deleteServiceTombstone(name: string) {
    return this.tombstones.delete(name);
  }

  getJoinToken(tokenHash: string) {
    return this.joinTokens.get(tokenHash);
  }
  listJoinTokens() {
    return this.joinTokens.values();
  }
  putJoinToken(token: JoinTokenRecord, opts: { lazy?: boolean } = {}) {
    return this.joinTokens.put(token.tokenHash, token, opts.lazy === true);
  }
  deleteJoinToken(tokenHash: string) {
    return this.joinTokens.delete(tokenHash);
  }

  getApiToken(id: string) {
    return this.apiTokens.get(id);
  }
  listApiTokens() {
    return this.apiTokens.values();
  }
  putApiToken(token: ApiTokenRecord) {
    return this.apiTokens.put(token.id, token);
  }
  deleteApiToken(id: string) {
    return this.apiTokens.delete(id);
  }

  getConfig(name: string) {
    return this.configs.get(name);
  }
  listConfigs() {
    return this.configs.values();
  }
  putConfig(config: ConfigRecord) {
    return this.configs.put(config.name, config);
  }
  deleteConfig(name: string) {
    return this.configs.delete(name);
  }

  getSecret(name: string) {
    return this.secrets.get(name);
  }
  listSecrets() {
    return this.secrets.values();
  }
  putSecret(secret: SecretRecord) {
    return this.secrets.put(secret.name, secret);
  }
  deleteSecret(name: string) {
    return this.secrets.delete(name);
  }

  /**
   * Writes the records that hold sealed values (secrets, services) whole, twice: the files' kept
   * previous copies and change logs go with it, so that no value sealed under a retired key is left
   * on disk (see key-rotation.ts). Costly: for a rotation, never on a running hub's paths.
   */
  async rewriteSealed(): Promise<void> {
    for (const collection of [this.secrets, this.services] as Array<ShardedCollection<unknown>>) {
      await collection.rewriteWhole();
      await collection.rewriteWhole();
    }
  }

  /**
   * Whether writes work. Writes that failed are not retried by themselves (a refused API write is
   * the client's to send again), so a failing store is probed again when asked, at most every
   * few seconds: /healthz must not say failing for good once space is back, or a load balancer
   * that took the hub out would never let it back in.
   */
  health() {
    const health = this.healthTracker.get();
    const nowMs = performance.now();
    if (!health.ok && nowMs >= this.recheckAtMs) {
      this.recheckAtMs = nowMs + HEALTH_RECHECK_INTERVAL_MS;
      void this.probeAll().then(
        () => this.healthTracker.succeeded(),
        () => undefined,
      );
    }
    return health;
  }

  private all(): Array<ShardedCollection<unknown>> {
    return [this.nodes, this.services, this.joinTokens, this.apiTokens, this.tombstones, this.configs, this.secrets] as Array<ShardedCollection<unknown>>;
  }

  stats() {
    const all = this.all();
    return {
      writes: all.reduce((n, c) => n + c.writes, 0),
      bytesWritten: all.reduce((n, c) => n + c.bytesWritten, 0),
    };
  }
}
