/**
 * The hub's durable state behind one interface, so that a distributed backend can replace the
 * embedded one later. Reads are synchronous from memory; each write updates memory at once and
 * returns a promise that resolves when the change is on disk, so "2xx" can mean "durable". A
 * durable write that fails rejects with a StoreWriteError and leaves memory as it was.
 *
 * Only durable state lives here (nodes' identity, services, placements, join and API tokens,
 * configs and secrets). Heartbeats
 * and observed container status are soft state kept in memory by the hub and never written.
 */
import type { NodeFacts } from '../../shared/protocol.js';
import type { NormalizedSpec } from '../spec/service-spec.js';
import type { RolloutRecord } from '../rollout/rollout-record.js';
import type { Placement } from '../scheduler/types.js';
import type { StoreHealth } from './store-write-error.js';
import type { SealedValue } from '../../shared/sealed-value.js';

export interface NodeRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** sha256 of the node's secret; the secret itself is only ever on the device. */
  credentialHash: string;
  advertiseAddress: string | null;
  /** Null until the node's agent has said hello once. */
  facts: NodeFacts | null;
  /** Generation of the last target computed for this node; it only ever grows. */
  generation: number;
  /** Hash of that target's content, so an unchanged target keeps its generation across restarts. */
  targetHash: string;
  joinedAt: string;
  /**
   * The name and labels the device declared at join (its flags), or the last ones an operator
   * accepted from it. Absent in records from before it existed: their name and labels stand in.
   */
  declared?: { name: string; labels: Record<string, string> };
  /** Labels the node's join token gave it: they stay whatever the device asks for. */
  tokenLabels?: Record<string, string>;
  /**
   * A name and labels the device asked for at hello, other than it declared: shown, never applied
   * until an operator accepts them. Null (or absent) when none.
   */
  requested?: { name: string; labels: Record<string, string> } | null;
  /**
   * When the hub declared the node lost (wall clock), null once it is back: kept so that a hub
   * restart finds it lost still. Absent in records from before it existed.
   */
  lostSince?: string | null;
  /**
   * An operator's hold on the node: `cordoned` takes no new replicas, `draining` also moves its
   * replicas away. Absent: active.
   */
  scheduling?: 'cordoned' | 'draining';
  /**
   * Services deleted with `purgeVolumes`, oldest first, at most MAX_VOLUME_PURGES: the node's
   * targets ask its agent to remove their volumes (a node away does it when it returns). A name
   * leaves the list when a service of that name is created again. Absent: none.
   */
  volumePurges?: string[];
  /** Grows by one at each operator's change of the node (see hub/node-revision.ts); absent: 1. */
  revision?: number;
}

export interface ServiceRecord {
  name: string;
  spec: NormalizedSpec;
  /** Grows by one on every accepted spec change. */
  revision: number;
  createdAt: string;
  /** When the current spec was accepted (nothing else changes it). */
  updatedAt: string;
  placements: Placement[];
  /**
   * The revisions before the current one, oldest first, at most 9: with the current one, the last
   * 10 accepted specs (see hub/revisions.ts). Absent in records from before it existed: those keep
   * only their current revision.
   */
  history?: RevisionRecord[];
  /** The service's latest rolling update (running, paused or finished); absent until its first. */
  rollout?: RolloutRecord;
}

/** An accepted spec of a service, kept so that it can be shown and rolled back to. */
export interface RevisionRecord {
  revision: number;
  acceptedAt: string;
  /** Whole, credentials included (an agent needs them after a rollback); redacted in every view. */
  spec: NormalizedSpec;
}

/** What is left of a deleted service: the revision it reached, so that one created again under its name goes on from there. */
export interface ServiceTombstone {
  name: string;
  revision: number;
  deletedAt: string;
}

export interface JoinTokenRecord {
  /** sha256 of the token. */
  tokenHash: string;
  /** Names the token in the API; random, never derived from the token (absent in records from before: given at first listing). */
  id?: string;
  createdAt: string;
  expiresAt: string;
  /** Labels given to every node that joins with this token (absent in records from before). */
  labels?: Record<string, string>;
  /** How many joins it allows; absent: any number until it expires. */
  uses?: number;
  /** Joins made with it; absent: none. */
  used?: number;
  lastUsedAt?: string;
  /** A revoked token joins nothing; it is kept a while so that a join with it is told why. */
  revokedAt?: string;
}

/** A token of the API, for a role; the first admin token (the data dir's file) is not one of these. */
export interface ApiTokenRecord {
  id: string;
  name: string;
  role: 'admin' | 'operator' | 'viewer';
  /** sha256 of the token's secret part; the token itself is shown once, at creation. */
  secretHash: string;
  createdAt: string;
  /** Null: valid until revoked. */
  expiresAt: string | null;
}

/** What configs and secrets share: a named value with a version that grows by one per change. */
interface ValueRecordBase {
  name: string;
  /** 1 at creation, one more at each change of the value (the same value again keeps it). */
  version: number;
  /** Bytes of the value. */
  size: number;
  /** Hex sha256 of the value: a config's whole, a secret's first 12 chars (what the API shows). */
  digest: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * The version a value had before its last change, kept while replicas an update has not reached
 * yet may still need it (a node that reboots meanwhile gets it again). One only: absent in records
 * from before, and in a value never changed.
 */
interface PreviousValueBase {
  version: number;
  size: number;
  digest: string;
  updatedAt: string;
}

/** A config: a value that is not secret, kept as it is (base64 of its bytes). */
export interface ConfigRecord extends ValueRecordBase {
  value: string;
  previous?: PreviousValueBase & { value: string };
}

/** A secret: its value only ever sealed with the master key (see hub/secrets/sealed-value.ts). */
export interface SecretRecord extends ValueRecordBase {
  sealed: SealedValue;
  /** Sealed with its version in the associated data (previousSecretAad), so it never passes for the current one. */
  previous?: PreviousValueBase & { sealed: SealedValue };
}

/**
 * One change of a record in memory, as subscribers see it (a Kubernetes informer's event): what
 * the record was and is now (undefined: none). `written` is the file write that carries it, so
 * that a subscriber can wait for it to land; null when memory went back to what the disk holds
 * (the undo of a refused write), which has nothing left to write.
 */
export interface RecordChange<C extends string, T> {
  collection: C;
  key: string;
  before: T | undefined;
  after: T | undefined;
  written: Promise<void> | null;
}

export type StoreChange =
  | RecordChange<'nodes', NodeRecord>
  | RecordChange<'services', ServiceRecord>
  | RecordChange<'serviceTombstones', ServiceTombstone>
  | RecordChange<'joinTokens', JoinTokenRecord>
  | RecordChange<'apiTokens', ApiTokenRecord>
  | RecordChange<'configs', ConfigRecord>
  | RecordChange<'secrets', SecretRecord>;

/** Called synchronously for every change of memory, in order; it must not throw, nor write to the store. */
export type StoreListener = (change: StoreChange) => void;

export interface Store {
  open(): Promise<void>;
  /** Writes whatever is pending and releases the files. */
  close(): Promise<void>;

  getNode(id: string): NodeRecord | undefined;
  listNodes(): Iterable<NodeRecord>;
  /**
   * `lazy`: the write may wait up to about a second to share a file write with others (facts that
   * every hello re-sends); memory changes at once either way.
   */
  putNode(node: NodeRecord, opts?: { lazy?: boolean }): Promise<void>;
  deleteNode(id: string): Promise<void>;

  getService(name: string): ServiceRecord | undefined;
  listServices(): Iterable<ServiceRecord>;
  putService(service: ServiceRecord): Promise<void>;
  deleteService(name: string): Promise<void>;

  getServiceTombstone(name: string): ServiceTombstone | undefined;
  putServiceTombstone(tombstone: ServiceTombstone): Promise<void>;
  deleteServiceTombstone(name: string): Promise<void>;

  getJoinToken(tokenHash: string): JoinTokenRecord | undefined;
  listJoinTokens(): Iterable<JoinTokenRecord>;
  /** `lazy`: as for putNode (a token's use count when it has no limit to enforce). */
  putJoinToken(token: JoinTokenRecord, opts?: { lazy?: boolean }): Promise<void>;
  deleteJoinToken(tokenHash: string): Promise<void>;

  getApiToken(id: string): ApiTokenRecord | undefined;
  listApiTokens(): Iterable<ApiTokenRecord>;
  putApiToken(token: ApiTokenRecord): Promise<void>;
  deleteApiToken(id: string): Promise<void>;

  getConfig(name: string): ConfigRecord | undefined;
  listConfigs(): Iterable<ConfigRecord>;
  putConfig(config: ConfigRecord): Promise<void>;
  deleteConfig(name: string): Promise<void>;

  getSecret(name: string): SecretRecord | undefined;
  listSecrets(): Iterable<SecretRecord>;
  putSecret(secret: SecretRecord): Promise<void>;
  deleteSecret(name: string): Promise<void>;

  /**
   * Tells `listener` of every change of a record in memory from now on: puts (lazy ones included),
   * deletes, and the undo of a durable write that failed. Returns the call that stops it.
   */
  subscribe(listener: StoreListener): () => void;

  /** Whether the latest file write failed (and since when), and how many failed in all. */
  health(): StoreHealth;

  /** Counters for benchmarks and metrics. */
  stats(): { writes: number; bytesWritten: number };
}
