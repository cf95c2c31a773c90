/**
 * Gives a connected node a fresh credential over its connection (POST /v1/nodes/:id/rotate-credential).
 *
 * The order is what keeps a crash anywhere from locking the node out:
 *   1. the hub makes a credential and sends it (`credential`, protocol 7); the store still holds the old digest;
 *   2. the agent writes it to its identity file atomically, keeping the credential it connected
 *      with beside it, and answers `credentialSaved`;
 *   3. only then does the hub store the new digest (durably; the node's upgrades wait meanwhile),
 *      and the old credential is refused from then on;
 *   4. the agent connects again with the new credential, and on a 401 with the one it kept; once
 *      welcomed it forgets the other.
 * A hub that dies before 3 holds the old digest, and the agent gets in with the one it kept; an
 * agent that dies before 2 has only the old one, which the hub still holds. Rejected alternative:
 * storing the new digest first (or both) on the hub, which needs a second digest in every node
 * record and a rule for when to drop it that a lost ack cannot break.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import { CREDENTIAL_ROTATION_PROTOCOL_VERSION } from '../shared/protocol.js';
import type { AgentGateway } from './agents/gateway.js';
import { makeNodeCredential } from './auth/secrets.js';
import type { Store } from './store/store.js';

/** How long the hub waits for the agent to say it stored the new credential (a write and an fsync on a slow SD card). */
export const ROTATION_ACK_TIMEOUT_MS = 15_000;

export type RotationOutcome =
  | { ok: true; nodeId: string; rotatedAt: string }
  | { ok: false; status: 404 | 409 | 503 | 504; code: string; message: string };

interface InFlight {
  rotation: string;
  hash: string;
  settle: (outcome: RotationOutcome) => void;
  timer: NodeJS.Timeout;
}

export interface CredentialRotationsDeps {
  store: Store;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  gateway: Pick<AgentGateway, 'send' | 'protocolVersion' | 'holdUpgrades'>;
  ackTimeoutMs?: number;
}

export class CredentialRotations {
  /** One rotation per node at a time: the agent takes one per connection. */
  private readonly inFlight = new Map<string, InFlight>();

  constructor(private readonly deps: CredentialRotationsDeps) {}

  async rotate(nodeId: string): Promise<RotationOutcome> {
    const { store, gateway } = this.deps;
    if (!store.getNode(nodeId)) return { ok: false, status: 404, code: 'node_not_found', message: `no node with id "${nodeId}"` };
    const version = gateway.protocolVersion(nodeId);
    if (version === null) {
      return { ok: false, status: 409, code: 'node_not_connected', message: 'the node is not connected: its credential can only be rotated over its connection' };
    }
    if (version < CREDENTIAL_ROTATION_PROTOCOL_VERSION) {
      return {
        ok: false,
        status: 409,
        code: 'agent_too_old',
        message: `the node's agent speaks protocol ${version}; rotating its credential needs ${CREDENTIAL_ROTATION_PROTOCOL_VERSION} or later: upgrade the agent`,
      };
    }
    if (this.inFlight.has(nodeId)) return { ok: false, status: 409, code: 'rotation_in_progress', message: "a rotation of this node's credential is in progress" };
    const { credential, hash } = makeNodeCredential(nodeId);
    const rotation = randomUUID();
    const done = new Promise<RotationOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.inFlight.delete(nodeId);
        resolve({
          ok: false,
          status: 504,
          code: 'rotation_unconfirmed',
          message: `the node did not confirm the new credential within ${this.ackTimeoutMs} ms: it keeps its current one; try again`,
        });
      }, this.ackTimeoutMs);
      timer.unref();
      this.inFlight.set(nodeId, { rotation, hash, settle: resolve, timer });
    });
    if (!gateway.send(nodeId, { type: 'credential', rotation, credential })) {
      this.end(nodeId);
      return { ok: false, status: 409, code: 'node_not_connected', message: 'the node is not connected: its credential can only be rotated over its connection' };
    }
    return done;
  }

  /** The agent stored the credential of `rotation`: the store takes its digest, and the old one is refused from then on. */
  saved(nodeId: string, rotation: string): void {
    const pending = this.inFlight.get(nodeId);
    // A late answer to a rotation that timed out: the hub kept the old digest, and the agent the old credential beside the new.
    if (!pending || pending.rotation !== rotation) return;
    this.end(nodeId);
    void this.store(nodeId, pending);
  }

  /** The node is gone: a rotation in flight ends unconfirmed. */
  forget(nodeId: string): void {
    const pending = this.end(nodeId);
    pending?.settle({ ok: false, status: 404, code: 'node_not_found', message: `node "${nodeId}" was removed` });
  }

  private get ackTimeoutMs(): number {
    return this.deps.ackTimeoutMs ?? ROTATION_ACK_TIMEOUT_MS;
  }

  private end(nodeId: string): InFlight | undefined {
    const pending = this.inFlight.get(nodeId);
    if (!pending) return undefined;
    clearTimeout(pending.timer);
    this.inFlight.delete(nodeId);
    return pending;
  }

  private async store(nodeId: string, pending: InFlight): Promise<void> {
    const { store, gateway, logger } = this.deps;
    const node = store.getNode(nodeId);
    if (!node) return pending.settle({ ok: false, status: 404, code: 'node_not_found', message: `node "${nodeId}" was removed` });
    const letIn = gateway.holdUpgrades(nodeId);
    try {
      await store.putNode({ ...node, credentialHash: pending.hash });
    } catch (error) {
      // The store put the old digest back; the agent gets in with the old credential it kept.
      logger.error({ err: error, nodeId }, 'could not store the rotated node credential; the node keeps its current one');
      return pending.settle({ ok: false, status: 503, code: 'store_unavailable', message: `could not store the new credential (the node keeps its current one): ${(error as Error).message}` });
    } finally {
      letIn();
    }
    logger.info({ nodeId }, 'node credential rotated; the previous one is refused from now on');
    pending.settle({ ok: true, nodeId, rotatedAt: new Date().toISOString() });
  }
}
