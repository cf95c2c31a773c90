/**
 * Who the nodes are: joining (a join token for a node id and credential), a node's name and
 * labels, and what its device may change of them.
 *
 * Name and labels are the operator's: they are fixed at join (the device's flags, plus the join
 * token's labels, which win) and change only through the operator (update). A device that says
 * another name or other labels at hello than it declared gets them shown as `requested`, never
 * applied: with a leaked credential it could otherwise claim, say, zone=secure and be sent what
 * runs there. Facts and the advertise address are the device's to report.
 */
import { randomUUID } from 'node:crypto';
import { canonicalJson } from '../shared/container-spec.js';
import type { HelloFrame, NodeFacts } from '../shared/protocol.js';
import { makeNodeCredential } from './auth/secrets.js';
import type { JoinTokens } from './join-tokens.js';
import { internedFacts, internedLabels } from './node-interning.js';
import { nextNodeRevision } from './node-revision.js';
import type { NodeRecord, Store } from './store/store.js';
import type { Logger } from '../shared/logger.js';

/** What an operator may change of a node: its name, its labels, or take what its device asked for. */
export interface NodeChange {
  name?: string;
  labels?: Record<string, string>;
  acceptRequested?: boolean;
}

/** Node names are unique: they are how operators and constraints (`node.name`) refer to nodes. */
export class NodeNameTakenError extends Error {
  readonly code = 'node_name_taken';
  constructor(
    readonly nodeName: string,
    readonly holderId: string,
  ) {
    super(`a node named "${nodeName}" exists already (id ${holderId}): choose another name`);
  }
}

export class NothingRequestedError extends Error {
  readonly code = 'nothing_requested';
  constructor(readonly nodeId: string) {
    super(`node ${nodeId} has not asked for another name or labels`);
  }
}

/** A label the node's join token gave it: it stays what the token said (see NodeRecord.tokenLabels). */
export class TokenLabelError extends Error {
  readonly code = 'token_label';
  constructor(
    readonly key: string,
    readonly value: string,
  ) {
    super(`set by the node's join token to "${value}"; leave it out or give that value`);
  }
}

type Identity = { name: string; labels: Record<string, string> };

const same = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

/** Free disk space changes all the time; it is reported, but is no reason for a store write. */
function sameFacts(a: NodeFacts | null, b: NodeFacts): boolean {
  return a !== null && same({ ...a, diskFreeBytes: 0 }, { ...b, diskFreeBytes: 0 });
}

/**
 * What the device said of itself when it joined (or last had accepted). Kept in the record only
 * once it differs from the node's name and labels (a join token's labels, an operator's change):
 * for most nodes it is their name and labels, and the hub holds tens of thousands of records.
 */
function declaredOf(node: NodeRecord): Identity {
  return node.declared ?? { name: node.name, labels: node.labels };
}

/** The first retry of removing the node of a failed join; each next one waits twice as long, up to the cap. */
const REMOVAL_RETRY_BASE_MS = 500;
const REMOVAL_RETRY_CAP_MS = 30_000;

export class NodeDirectory {
  /** Retries of removing nodes whose joins failed halfway, by node id: at most one each. */
  private readonly removalRetries = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
    /** A node's labels or capacity changed: where replicas belong may have changed. */
    private readonly placementInputsChanged: () => void,
    private readonly joinTokens: Pick<JoinTokens, 'redeem'>,
    private readonly opts: { removalRetryBaseMs?: number } = {},
  ) {}

  /** Stops retrying removals (the hub is closing: its store with it). */
  close(): void {
    this.closed = true;
    for (const timer of this.removalRetries.values()) clearTimeout(timer);
    this.removalRetries.clear();
  }

  /**
   * Removes the node of a join that failed halfway, in `delayMs` and then as often as it takes: a
   * node left behind would hold a credential no device was given, and stay in the fleet for good.
   * The disk that failed the join often fails the first removal too. Level-triggered: each try
   * removes the node only if it is still there.
   */
  private retryRemoval(nodeId: string, delayMs: number): void {
    if (this.closed || this.removalRetries.has(nodeId)) return;
    const timer = setTimeout(() => {
      this.removalRetries.delete(nodeId);
      if (this.closed || !this.store.getNode(nodeId)) return;
      this.store.deleteNode(nodeId).catch((err: unknown) => {
        const nextMs = Math.min(delayMs * 2, REMOVAL_RETRY_CAP_MS);
        this.logger.warn({ err, nodeId, retryInMs: nextMs }, 'could not yet remove the node of a failed join; trying again');
        this.retryRemoval(nodeId, nextMs);
      });
    }, delayMs);
    // Nothing to keep a closing hub alive for.
    timer.unref();
    this.removalRetries.set(nodeId, timer);
  }

  /** The node of that name, if any. O(nodes): joins and renames are rare, never per frame. */
  private named(name: string): NodeRecord | undefined {
    for (const n of this.store.listNodes()) if (n.name === name) return n;
    return undefined;
  }

  /**
   * Trades a join token for a new node and its credential. Throws JoinTokenRefusedError when the
   * token does not join, and NodeNameTakenError when the name is taken (the token keeps its use).
   */
  async join(joinToken: string, name: string, labels: Record<string, string>): Promise<{ nodeId: string; credential: string }> {
    // The token's check and use, the name's check and the node's write happen in one tick (the
    // store changes memory at once): two joins cannot both take a name, nor a token's last use.
    const { admitted: tokenLabels, used, giveBack } = this.joinTokens.redeem(joinToken, (token) => {
      const taken = this.named(name);
      if (taken) throw new NodeNameTakenError(name, taken.id);
      return token.labels ?? {};
    });
    const nodeId = randomUUID();
    const { credential, hash: credentialHash } = makeNodeCredential(nodeId);
    const written = this.store.putNode({
      id: nodeId,
      name,
      labels: internedLabels({ ...labels, ...tokenLabels }),
      credentialHash,
      advertiseAddress: null,
      facts: null,
      generation: 0,
      targetHash: '',
      joinedAt: new Date().toISOString(),
      ...(Object.keys(tokenLabels).length > 0 ? { declared: { name, labels }, tokenLabels } : {}),
    });
    const [use, put] = await Promise.allSettled([used, written]);
    if (use.status === 'rejected' || put.status === 'rejected') {
      // Undo the write that landed: no use lost for a node never made, no node whose credential no device got.
      if (use.status === 'fulfilled') await giveBack().catch((err: unknown) => this.logger.error({ err }, 'could not give back the use of a join token'));
      if (put.status === 'fulfilled') {
        await this.store.deleteNode(nodeId).catch((err: unknown) => {
          this.logger.warn({ err, nodeId }, 'could not yet remove the node of a failed join; trying again');
          this.retryRemoval(nodeId, this.opts.removalRetryBaseMs ?? REMOVAL_RETRY_BASE_MS);
        });
      }
      throw use.status === 'rejected' ? use.reason : (put as PromiseRejectedResult).reason;
    }
    this.logger.info({ nodeId, name }, 'node joined');
    return { nodeId, credential };
  }

  /**
   * An operator's change of a node's name or labels, or acceptance of what its device asked for
   * (the token's labels stay either way). Durable before it answers; a new name must be free.
   * Replicas that no longer match their constraints then move off (each kept until its
   * replacement serves), and ones that now match may come.
   */
  async update(id: string, change: NodeChange): Promise<NodeRecord | undefined> {
    const node = this.store.getNode(id);
    if (!node) return undefined;
    let updated: NodeRecord;
    if (change.acceptRequested) {
      const wish = node.requested;
      if (!wish) throw new NothingRequestedError(id);
      updated = { ...node, name: wish.name, labels: internedLabels({ ...wish.labels, ...(node.tokenLabels ?? {}) }), declared: wish, requested: null, revision: nextNodeRevision(node) };
    } else {
      // What the device declared stays what it was, whatever the operator calls the node now. New
      // labels replace the operator's; the token's stay, as they do whatever the device asks for.
      const tokenLabels = node.tokenLabels ?? {};
      if (change.labels) {
        for (const [key, value] of Object.entries(tokenLabels)) {
          if (key in change.labels && change.labels[key] !== value) throw new TokenLabelError(key, value);
        }
      }
      const labels = change.labels ? internedLabels({ ...change.labels, ...tokenLabels }) : node.labels;
      updated = { ...node, name: change.name ?? node.name, labels, declared: declaredOf(node), revision: nextNodeRevision(node) };
    }
    const taken = updated.name === node.name ? undefined : this.named(updated.name);
    if (taken) throw new NodeNameTakenError(updated.name, taken.id);
    await this.store.putNode(updated);
    this.logger.info({ nodeId: id, name: updated.name, labels: updated.labels }, 'node name or labels changed by the operator');
    this.placementInputsChanged();
    return updated;
  }

  /**
   * Takes what a hello says of the device: its facts and advertise address, and, when it says
   * another name or labels than it declared, that wish as `requested`. Writes only when something
   * changed, lazily: a reconnect storm must not become a storm of store writes, and the agent
   * says all of it again at its next hello should the hub lose it.
   */
  hello(node: NodeRecord, hello: HelloFrame): void {
    const declared = declaredOf(node);
    const wish = declared.name === hello.name && same(declared.labels, hello.labels) ? null : { name: hello.name, labels: hello.labels };
    const wishChanged = !same(node.requested ?? null, wish);
    const factsChanged = node.advertiseAddress !== hello.advertiseAddress || !sameFacts(node.facts, hello.facts);
    if (!wishChanged && !factsChanged) return;
    if (wishChanged && wish) {
      this.logger.warn(
        { nodeId: node.id, name: node.name, requestedName: wish.name, requestedLabels: wish.labels },
        'node asks for another name or labels; they apply once an operator accepts them (PATCH /v1/nodes/:id)',
      );
    }
    const facts = internedFacts(hello.facts);
    let updated: NodeRecord;
    if ('requested' in node) {
      // No request is no key at all: most records never have one.
      const { requested: _previous, ...rest } = node;
      updated = { ...rest, advertiseAddress: hello.advertiseAddress, facts, ...(wish ? { requested: wish } : {}) };
    } else {
      // A spread first keeps the record's layout, every field inside the object; the rest of a
      // destructuring is built key by key, and most keys then go to a second array (some 40
      // bytes more on each of tens of thousands of node records).
      updated = wish ? { ...node, advertiseAddress: hello.advertiseAddress, facts, requested: wish } : { ...node, advertiseAddress: hello.advertiseAddress, facts };
    }
    void this.store.putNode(updated, { lazy: true }).catch((err: unknown) => this.logger.error({ err, nodeId: node.id }, 'could not store node facts'));
    // New capacity may change where replicas belong. (A node that just became ready has already
    // asked for a pass through the failure detector.)
    if (factsChanged) this.placementInputsChanged();
  }
}
