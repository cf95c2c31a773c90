import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensurePrivateDir } from '../../shared/private-files.js';

/** A random secret with a prefix that says what it is (`tat_` admin, `tjt_` join, `tnc_` node). */
export function newSecret(prefix: string, bytes = 32): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Constant-time comparison of two hex digests, so response time leaks nothing about a secret. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** The bearer token from an Authorization header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/** Reads the admin token from the data dir (made private: 0700), creating it (0600) at first start. */
export async function loadOrCreateAdminToken(dataDir: string): Promise<{ token: string; file: string; created: boolean }> {
  await ensurePrivateDir(dataDir);
  const file = path.join(dataDir, 'admin-token');
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token) {
      // One written before data dirs were private may be readable by others.
      await chmod(file, 0o600);
      return { token, file, created: false };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const token = newSecret('tat_');
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return { token, file, created: true };
}

/** A node credential is `tnc_<nodeId>.<secret>`: the id lets the hub find the node in O(1). */
export function makeNodeCredential(nodeId: string): { credential: string; hash: string } {
  const secret = newSecret('', 32);
  return { credential: `tnc_${nodeId}.${secret}`, hash: sha256(secret) };
}

export function parseNodeCredential(credential: string): { nodeId: string; secretHash: string } | null {
  const m = /^tnc_([A-Za-z0-9-]{1,64})\.([A-Za-z0-9_-]{16,128})$/.exec(credential);
  return m ? { nodeId: m[1]!, secretHash: sha256(m[2]!) } : null;
}
