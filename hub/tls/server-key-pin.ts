import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';

function pinOf(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return `sha256//${createHash('sha256').update(spki).digest('base64')}`;
}

/**
 * curl's `--pinnedpubkey` form of the hub's server key: `sha256//` and the base64 SHA-256 of its
 * SubjectPublicKeyInfo. A device that does not trust the hub's CA yet fetches install.sh with it:
 * the pin, printed by the hub itself, stands for the CA check curl cannot make.
 */
export function serverKeyPin(keyPem: string): string {
  return pinOf(createPublicKey(keyPem));
}

/** The same pin, of the certificate a TLS socket presents (DER): current after a certificate reload. */
export function certificateKeyPin(certificateDer: Buffer): string {
  return pinOf(new X509Certificate(certificateDer).publicKey);
}
