import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
// Node verifies and parses certificates but cannot make one: node-forge signs them (no dependencies of its own).
import forge from 'node-forge';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { ensurePrivateDir } from '../../shared/private-files.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** The CA is what agents pin: it outlives many server certificates. */
export const CA_VALIDITY_DAYS = 3650;
export const SERVER_VALIDITY_DAYS = 365;
/** A server certificate with less than this left is issued again at start. */
export const SERVER_RENEW_BEFORE_DAYS = 30;
/** Devices' clocks drift: a certificate valid from a little before now is not refused by one that is behind. */
const BACKDATE_MS = 60 * 60 * 1000;

/** What the hub serves HTTPS with, and the fingerprint agents pin. */
export interface HubTls {
  key: string;
  /** The server certificate, followed by its chain up to the CA. */
  cert: string;
  /** `sha256:<hex>` of the CA certificate (see shared/ca-fingerprint.ts). */
  caFingerprint: string;
}

/** The names and addresses the server certificate is valid for. */
export interface ServerNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * localhost, 127.0.0.1, ::1, this machine's host name, the listen address when it is one
 * address (not 0.0.0.0 or ::), and the operator's `--tls-san` names. Agents check the chain to
 * the pinned CA, not the name, so a device may reach the hub by an address missing here; curl and
 * other clients given the CA do check it.
 */
export function serverNames(listenHost: string, extraNames: readonly string[], hostname = os.hostname()): ServerNames {
  const dnsNames = new Set<string>(['localhost']);
  const ipAddresses = new Set<string>(['127.0.0.1', '::1']);
  for (const name of [hostname, listenHost, ...extraNames]) {
    if (name === '' || name === '0.0.0.0' || name === '::') continue;
    if (isIP(name) !== 0) ipAddresses.add(name);
    else dnsNames.add(name.toLowerCase());
  }
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

interface KeyPair {
  privatePem: string;
  forgePrivate: forge.pki.rsa.PrivateKey;
  forgePublic: forge.pki.rsa.PublicKey;
}

function newKeyPair(): KeyPair {
  // Node's own generator: forge's pure-JS one takes seconds for 2048 bits.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return {
    privatePem,
    forgePrivate: forge.pki.privateKeyFromPem(privatePem) as forge.pki.rsa.PrivateKey,
    forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey,
  };
}

function keyPairFromPem(privatePem: string): KeyPair {
  const publicPem = createPublicKey(createPrivateKey(privatePem)).export({ type: 'spki', format: 'pem' }).toString();
  return {
    privatePem,
    forgePrivate: forge.pki.privateKeyFromPem(privatePem) as forge.pki.rsa.PrivateKey,
    forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey,
  };
}

/** A positive serial of 16 random bytes (the first byte below 0x80 keeps the DER integer positive). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, now: Date, validityDays: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + validityDays * DAY_MS);
  return cert;
}

/** A new CA, its subject named with a random suffix so that two hubs' CAs never share a name. */
export function createCa(now = new Date()): { certPem: string; keyPem: string } {
  const keys = newKeyPair();
  const cert = newCertificate(keys.forgePublic, now, CA_VALIDITY_DAYS);
  const subject = [{ name: 'commonName', value: `Tether hub CA ${randomBytes(4).toString('hex')}` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.forgePrivate, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

/** A server certificate for `names`, signed by the CA. */
export function issueServerCertificate(ca: { certPem: string; keyPem: string }, names: ServerNames, now = new Date()): { certPem: string; keyPem: string } {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKeys = keyPairFromPem(ca.keyPem);
  const keys = newKeyPair();
  const cert = newCertificate(keys.forgePublic, now, SERVER_VALIDITY_DAYS);
  cert.setSubject([{ name: 'commonName', value: names.dnsNames[0] ?? 'localhost' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...names.dnsNames.map((value) => ({ type: 2, value })), ...names.ipAddresses.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKeys.forgePrivate, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

/**
 * Why a server certificate must be issued again, or null when it can serve: signed by this CA,
 * more than SERVER_RENEW_BEFORE_DAYS left, valid for every name.
 */
export function serverCertificateProblem(certPem: string, caPem: string, names: ServerNames, now = new Date()): string | null {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not signed by the CA';
  if (new Date(cert.validTo).getTime() - now.getTime() < SERVER_RENEW_BEFORE_DAYS * DAY_MS) return `expires ${new Date(cert.validTo).toISOString()}`;
  const missing = [...names.dnsNames.filter((n) => cert.checkHost(n) === undefined), ...names.ipAddresses.filter((ip) => cert.checkIP(ip) === undefined)];
  if (missing.length > 0) return `not valid for ${missing.join(', ')}`;
  return null;
}

async function readIfThere(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

export interface GeneratedHubTls extends HubTls {
  /** The CA was made by this start: agents joined before now pinned another. */
  caCreated: boolean;
  /** Why the server certificate was issued by this start (null: the one on disk serves). */
  serverIssuedBecause: string | null;
}

/**
 * The hub's own CA and server certificate in `dir` (`<data-dir>/tls`): made at the first start,
 * the server certificate issued again when it nears its end or misses a name. Keys are 0600.
 */
export async function loadOrCreateHubTls(dir: string, names: ServerNames, now = new Date(), { makeCa = true }: { makeCa?: boolean } = {}): Promise<GeneratedHubTls> {
  await ensurePrivateDir(dir);
  const files = { caCert: path.join(dir, 'ca.crt'), caKey: path.join(dir, 'ca.key'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
  let caCert = await readIfThere(files.caCert);
  let caKey = await readIfThere(files.caKey);
  let caCreated = false;
  if (caCert === null || caKey === null) {
    if (caCert !== null || caKey !== null) {
      // Half a CA cannot sign: making a new one would silently break every agent's pin.
      throw new Error(`${dir} holds ${caCert !== null ? 'ca.crt without ca.key' : 'ca.key without ca.crt'}: restore the missing file, or remove both to make a new CA (every agent then has to join again)`);
    }
    // A running hub that finds its CA gone does not make another: agents pinned the one it serves.
    if (!makeCa) throw new Error(`${dir} no longer holds the hub's CA (ca.crt and ca.key)`);
    const ca = createCa(now);
    // The key first: a crash between the two leaves a key without certificate, which the check above names.
    await writeFileAtomic(files.caKey, ca.keyPem, 0o600);
    await writeFileAtomic(files.caCert, ca.certPem, 0o644);
    caCert = ca.certPem;
    caKey = ca.keyPem;
    caCreated = true;
  }
  let cert = await readIfThere(files.cert);
  let key = await readIfThere(files.key);
  const problem = cert === null || key === null ? 'none yet' : serverCertificateProblem(cert, caCert, names, now);
  if (problem !== null) {
    const issued = issueServerCertificate({ certPem: caCert, keyPem: caKey }, names, now);
    await writeFileAtomic(files.key, issued.keyPem, 0o600);
    await writeFileAtomic(files.cert, issued.certPem, 0o644);
    cert = issued.certPem;
    key = issued.keyPem;
  }
  return { key: key!, cert: `${cert!.trimEnd()}\n${caCert.trimEnd()}\n`, caFingerprint: caFingerprint(caCert), caCreated, serverIssuedBecause: problem };
}

/** The PEM certificates in `text`, in order. */
export function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * The operator's certificate and key (`--tls-cert`, `--tls-key`). The certificate file holds the
 * server certificate first and its chain after it; the last one is what agents pin (the CA, or
 * the certificate itself when it is self-signed), so the file must end with the root CA.
 */
export async function loadOperatorTls(certFile: string, keyFile: string): Promise<HubTls> {
  const certText = await readFile(certFile, 'utf8');
  const key = await readFile(keyFile, 'utf8');
  const certs = pemCertificates(certText);
  if (certs.length === 0) throw new Error(`${certFile} holds no PEM certificate`);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new Error(`${keyFile} is not a PEM private key: ${(error as Error).message}`);
  }
  if (!new X509Certificate(certs[0]!).checkPrivateKey(privateKey)) throw new Error(`${keyFile} is not the key of the first certificate in ${certFile}`);
  // Agents trust only the pinned certificate, as the root of the chain: OpenSSL (as Node 20 runs
  // it) verifies no chain that ends at a certificate that is not self-signed.
  const root = new X509Certificate(certs[certs.length - 1]!);
  if (!root.checkIssued(root) || !root.verify(root.publicKey)) {
    throw new Error(`${certFile} must end with the root CA certificate (self-signed) that agents are to pin; its last certificate is issued by "${root.issuer.replaceAll('\n', ', ')}"`);
  }
  return { key, cert: certText, caFingerprint: caFingerprint(root) };
}
