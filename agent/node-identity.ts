import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from './atomic-file.js';

/** What the agent keeps after joining: who it is and how it proves it (file mode 0600). */
export interface NodeIdentity {
  hubUrl: string;
  nodeId: string;
  credential: string;
}

const FILE = 'node.json';

export async function loadIdentity(dataDir: string): Promise<NodeIdentity | null> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const value = JSON.parse(text) as Partial<NodeIdentity>;
  if (typeof value.hubUrl !== 'string' || typeof value.nodeId !== 'string' || typeof value.credential !== 'string') {
    throw new Error(`${path.join(dataDir, FILE)} is damaged: remove it and join again with a new join token`);
  }
  return value as NodeIdentity;
}

export async function saveIdentity(dataDir: string, identity: NodeIdentity): Promise<void> {
  await writeFileAtomic(path.join(dataDir, FILE), `${JSON.stringify(identity, null, 2)}\n`, 0o600);
}

export class JoinRefusedError extends Error {
  readonly code = 'join_refused';
}

/**
 * Trades a join token for this node's id and credential. A refusal (bad or expired token) is
 * final and thrown as JoinRefusedError; a hub that cannot be reached is a plain Error to retry.
 */
export async function joinHub(hubUrl: string, joinToken: string, name: string, labels: Record<string, string>): Promise<NodeIdentity> {
  const response = await fetch(new URL('/v1/join', hubUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ joinToken, name, labels }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await response.json().catch(() => ({}))) as { nodeId?: string; credential?: string; error?: { message?: string } };
  if (response.status >= 400 && response.status < 500) {
    throw new JoinRefusedError(`the hub refused to join this node (HTTP ${response.status}): ${body.error?.message ?? 'no reason given'}`);
  }
  if (!response.ok || !body.nodeId || !body.credential) throw new Error(`join failed: HTTP ${response.status}`);
  return { hubUrl, nodeId: body.nodeId, credential: body.credential };
}
