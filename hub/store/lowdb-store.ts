import path from 'node:path';
import type { JoinTokenRecord, NodeRecord, ServiceRecord, Store } from './store.js';
import { ShardedCollection } from './sharded-collection.js';

export interface LowdbStoreOptions {
  dir: string;
  /** Files per collection; fixed for the life of a data directory (keys hash into them). */
  nodeShards?: number;
  serviceShards?: number;
}

/** The embedded store: lowdb JSON files under `<data-dir>/store`, sharded per collection. */
export class LowdbStore implements Store {
  private readonly nodes: ShardedCollection<NodeRecord>;
  private readonly services: ShardedCollection<ServiceRecord>;
  private readonly joinTokens: ShardedCollection<JoinTokenRecord>;

  constructor(opts: LowdbStoreOptions) {
    this.nodes = new ShardedCollection(path.join(opts.dir, 'nodes'), 'nodes', opts.nodeShards ?? 64);
    this.services = new ShardedCollection(path.join(opts.dir, 'services'), 'services', opts.serviceShards ?? 64);
    this.joinTokens = new ShardedCollection(opts.dir, 'join-tokens', 1);
  }

  async open(): Promise<void> {
    await Promise.all([this.nodes.open(), this.services.open(), this.joinTokens.open()]);
  }

  async close(): Promise<void> {
    await Promise.all([this.nodes.flush(), this.services.flush(), this.joinTokens.flush()]);
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
    return this.services.get(name);
  }
  listServices() {
    return this.services.values();
  }
  putService(service: ServiceRecord) {
    return this.services.put(service.name, service);
  }
  deleteService(name: string) {
    return this.services.delete(name);
  }

  getJoinToken(tokenHash: string) {
    return this.joinTokens.get(tokenHash);
  }
  putJoinToken(token: JoinTokenRecord) {
    return this.joinTokens.put(token.tokenHash, token);
  }
  deleteJoinToken(tokenHash: string) {
    return this.joinTokens.delete(tokenHash);
  }

  stats() {
    const all = [this.nodes, this.services, this.joinTokens];
    return {
      writes: all.reduce((n, c) => n + c.writes, 0),
      bytesWritten: all.reduce((n, c) => n + c.bytesWritten, 0),
    };
  }
}
