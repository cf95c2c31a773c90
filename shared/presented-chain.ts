/**
 * Reading the certificate chain a hub presents, without trusting it, to pin the hub's CA by its
 * fingerprint: the agent at join, the CLI at `--ca-fingerprint`. Both then trust that CA alone.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { caFingerprint } from './ca-fingerprint.js';

const PROBE_TIMEOUT_MS = 15_000;
/** A chain longer than this is not a hub's (the hub serves its certificate and its CA). */
const MAX_CHAIN = 10;

/** OpenSSL's verdicts on a chain that does not lead to a trusted CA (a pinned one included). */
export const CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
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

/** The certificates the hub at `url` presents, leaf first, read without trusting any of them. */
export function presentedChain(url: URL): Promise<X509Certificate[]> {
  return new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({
      host,
      port: Number(url.port || 443),
      // Read only, never trusted: what is in the chain is checked by fingerprint.
      rejectUnauthorized: false,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      timeout: PROBE_TIMEOUT_MS,
    });
    socket.on('secureConnect', () => {
      const chain: X509Certificate[] = [];
      let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      const seen = new Set<string>();
      while (cert && cert.raw && !seen.has(cert.fingerprint256) && chain.length < MAX_CHAIN) {
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

/** The fingerprint of the chain's last certificate: what the hub presents as its CA; null for no chain. */
export function presentedCaOf(chain: readonly X509Certificate[]): string | null {
  return chain.length > 0 ? caFingerprint(chain[chain.length - 1]!) : null;
}

/** The CA with `fingerprint` in `chain`, and what the chain presents as its CA (for the refusal's message). */
export function caInChain(chain: readonly X509Certificate[], fingerprint: string): { ca: X509Certificate | undefined; presented: string | null } {
  return { ca: chain.find((cert) => caFingerprint(cert) === fingerprint), presented: presentedCaOf(chain) };
}
