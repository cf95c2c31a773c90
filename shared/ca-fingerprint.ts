import { X509Certificate } from 'node:crypto';

/**
 * The fingerprint a hub's CA is pinned by: `sha256:` and the lowercase hex SHA-256 of the
 * certificate's DER (what `openssl x509 -noout -fingerprint -sha256` prints, without colons).
 */
export function caFingerprint(certificate: X509Certificate | string | Buffer): string {
  const cert = certificate instanceof X509Certificate ? certificate : new X509Certificate(certificate);
  return `sha256:${cert.fingerprint256.replaceAll(':', '').toLowerCase()}`;
}

/** `sha256:` and 64 hex digits; colons between the bytes and upper case are accepted (as openssl prints it). */
export function normalizeCaFingerprint(text: string): string | null {
  const match = /^sha256:([0-9a-fA-F:]+)$/.exec(text.trim());
  if (!match) return null;
  const hex = match[1]!.replaceAll(':', '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : null;
}
