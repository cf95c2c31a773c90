import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { caInChain, CERTIFICATE_ERROR_CODES, presentedCaOf, presentedChain } from '../../shared/presented-chain.js';

/** The hub's CA, as pinned at join: next to node.json in the data dir. */
export interface PinnedCa {
  pem: string;
  fingerprint: string;
}

const FILE = 'hub-ca.pem';

/** The hub presents a chain without the pinned CA: another hub on that address, or an impostor. */
export class PinMismatchError extends Error {
  readonly code = 'ca_pin_mismatch';
  constructor(
    hubUrl: string,
    readonly expected: string,
    readonly presented: string | null,
  ) {
    super(
      `the hub at ${hubUrl} presents a certificate from CA ${presented ?? '(none)'}, not from the pinned CA ${expected}: ` +
        'another hub on that address, or someone impersonating it; refusing it',
    );
  }
}

export async function loadPinnedCa(dataDir: string): Promise<PinnedCa | null> {
  let pem: string;
  try {
    pem = await readFile(path.join(dataDir, FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    return { pem, fingerprint: caFingerprint(pem) };
  } catch (error) {
    throw new Error(`${path.join(dataDir, FILE)} is damaged (${(error as Error).message}): remove it and start again with --ca-fingerprint`);
  }
}

export async function savePinnedCa(dataDir: string, pem: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path.join(dataDir, FILE), pem, 0o600);
}

/**
 * TLS options for every connection to the hub once its CA is pinned: the chain must end at that
 * CA, and only there (`ca` replaces the system's roots). The name is not checked: the CA is the
 * hub's own and signs nothing else, while devices often reach the hub by an address its
 * certificate does not list (a NAT, a VPN, a new IP).
 */
export function pinnedTlsOptions(caPem: string): { ca: string; rejectUnauthorized: true; checkServerIdentity: () => undefined } {
  return { ca: caPem, rejectUnauthorized: true, checkServerIdentity: () => undefined };
}

export function isCertificateError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && CERTIFICATE_ERROR_CODES.has(code);
}

/**
 * First contact: the CA certificate with `fingerprint` in the chain the hub presents, as PEM.
 * Throws PinMismatchError when there is none. That the hub holds the key of a certificate this
 * CA signed is proven by the next connection, made with pinnedTlsOptions.
 */
export async function fetchPinnedCa(url: URL, fingerprint: string): Promise<string> {
  const { ca, presented } = caInChain(await presentedChain(url), fingerprint);
  if (!ca) throw new PinMismatchError(url.origin, fingerprint, presented);
  return ca.toString();
}

/** The fingerprint of the last certificate of the chain the hub at `url` presents (its CA); null when it cannot be read. */
export async function presentedCaFingerprint(url: URL): Promise<string | null> {
  try {
    return presentedCaOf(await presentedChain(url));
  } catch {
    return null;
  }
}
