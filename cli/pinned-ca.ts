import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { caFingerprint } from '../shared/ca-fingerprint.js';
import { CliError } from './cli-error.js';

const PROBE_TIMEOUT_MS = 15_000;
/** A chain longer than this is not a hub's (the hub serves its certificate and its CA). */
const MAX_CHAIN = 10;

/** The certificates the hub presents, leaf first, read without trusting any of them. */
function presentedChain(url: URL): Promise<X509Certificate[]> {
  return new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({
      host,
      port: Number(url.port || 443),
      // Read only, never trusted: the chain is checked by fingerprint below.
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
    socket.on('timeout', () => socket.destroy(new Error(`no TLS handshake within ${PROBE_TIMEOUT_MS} ms`)));
    socket.on('error', reject);
  });
}

/**
 * The hub's CA with this fingerprint, as PEM, from the chain the hub presents (as the agent pins
 * it at join). That the hub holds a key this CA vouches for is proven by the request made next,
 * which trusts this CA alone.
 */
export async function pinCa(url: URL, fingerprint: string): Promise<string> {
  if (url.protocol !== 'https:') throw new CliError(`--ca-fingerprint needs an https:// hub, not ${url.origin}`);
  let chain: X509Certificate[];
  try {
    chain = await presentedChain(url);
  } catch (error) {
    throw new CliError(`cannot reach the hub at ${url.origin}: ${(error as Error).message}`);
  }
  const ca = chain.find((cert) => caFingerprint(cert) === fingerprint);
  if (!ca) {
    const presented = chain.length > 0 ? caFingerprint(chain[chain.length - 1]!) : '(none)';
    throw new CliError(
      `the hub at ${url.origin} presents a certificate from CA ${presented}, not from ${fingerprint}: another hub on that address, or someone impersonating it; refusing it`,
    );
  }
  return ca.toString();
}
