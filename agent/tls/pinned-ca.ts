import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { caFingerprint } from '../../shared/ca-fingerprint.js';

/** The hub's CA, as pinned at join: next to node.json in the data dir. */
export interface PinnedCa {
  pem: string;
  fingerprint: string;
}

const FILE = 'hub-ca.pem';
const PROBE_TIMEOUT_MS = 15_000;

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

/** OpenSSL's verdicts on a chain (what a certificate that does not lead to the pinned CA gets). */
const CERTIFICATE_ERROR_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
]);

export function isCertificateError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && CERTIFICATE_ERROR_CODES.has(code);
}

/** The certificates the hub at `url` presents, leaf first, read without trusting any of them. */
function presentedChain(url: URL): Promise<X509Certificate[]> {
  return new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({
      host,
      port: Number(url.port || 443),
      // Read only, never trusted: what is in the chain is checked by fingerprint below.
      rejectUnauthorized: false,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      timeout: PROBE_TIMEOUT_MS,
    });
    socket.on('secureConnect', () => {
      const chain: X509Certificate[] = [];
      let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        chain.push(new X509Certificate(cert.raw));
        cert = cert.issuerCertificate;
      }
      socket.end();
      resolve(chain);
    });
    socket.on('timeout', () => socket.destroy(new Error(`no TLS handshake with ${url.host} within ${PROBE_TIMEOUT_MS} ms`)));
    socket.on('error', reject);
  });
}

/**
 * First contact: the CA certificate with `fingerprint` in the chain the hub presents, as PEM.
 * Throws PinMismatchError when there is none. That the hub holds the key of a certificate this
 * CA signed is proven by the next connection, made with pinnedTlsOptions.
 */
export async function fetchPinnedCa(url: URL, fingerprint: string): Promise<string> {
  const chain = await presentedChain(url);
  const ca = chain.find((cert) => caFingerprint(cert) === fingerprint);
  if (!ca) throw new PinMismatchError(url.origin, fingerprint, chain.length > 0 ? caFingerprint(chain[chain.length - 1]!) : null);
  return ca.toString();
}

/** The fingerprint of the last certificate of the chain the hub at `url` presents (its CA); null when it cannot be read. */
export async function presentedCaFingerprint(url: URL): Promise<string | null> {
  try {
    const chain = await presentedChain(url);
    return chain.length > 0 ? caFingerprint(chain[chain.length - 1]!) : null;
  } catch {
    return null;
  }
}
