import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { normalizeCaFingerprint } from '../shared/ca-fingerprint.js';
import { CliError, UsageError } from './cli-error.js';
import type { CliIo } from './io.js';

/** What `tether login` keeps: one hub, its token, and the CA it was trusted with. */
export interface SavedConfig {
  hub: string;
  token: string;
  /** PEM of the hub's CA, from `--ca-cert` or pinned by `--ca-fingerprint` at login. */
  caCert?: string;
  /** Set when caCert was pinned by fingerprint: the hub's own CA, so the name is not checked (as the agent does). */
  caPinned?: boolean;
}

/** The global flags every command takes. */
export interface GlobalFlags {
  hub?: string;
  token?: string;
  config?: string;
  caCert?: string;
  caFingerprint?: string;
  json?: boolean;
}

/** How to trust the hub's certificate. */
export type HubTrust =
  | { kind: 'system' }
  /** `checkName: false` only for a CA pinned by its fingerprint: it is the hub's own and signs nothing else. */
  | { kind: 'ca'; pem: string; checkName: boolean }
  | { kind: 'fingerprint'; fingerprint: string };

export interface Connection {
  hub: URL;
  token: string;
  trust: HubTrust;
}

/** A config file is a few hundred bytes; anything far larger is not one. */
const MAX_CONFIG_BYTES = 1024 * 1024;

export function configPath(flags: GlobalFlags, io: CliIo): string {
  if (flags.config) return flags.config;
  if (io.env.TETHER_CONFIG) return io.env.TETHER_CONFIG;
  const base = io.env.XDG_CONFIG_HOME || path.join(io.homeDir, '.config');
  return path.join(base, 'tether', 'config.json');
}

/**
 * `https://hub:7070`, `http://127.0.0.1:7070`, or `hub:7070` (HTTPS, the hub's default). Only the
 * origin is kept: every route is absolute.
 */
export function hubUrl(text: string, source: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`${source}: "${text}" is not a hub address (e.g. https://hub.example:7070)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`${source}: "${text}" must be an http:// or https:// address`);
  return new URL(url.origin);
}

export async function loadConfig(file: string): Promise<SavedConfig | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (text.length > MAX_CONFIG_BYTES) throw new CliError(`${file} is not a tether config (over ${MAX_CONFIG_BYTES} bytes)`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not valid JSON (${(error as Error).message}): run tether login again`);
  }
  const saved = value as Partial<SavedConfig> | null;
  if (!saved || typeof saved !== 'object' || typeof saved.hub !== 'string' || typeof saved.token !== 'string') {
    throw new CliError(`${file} lacks "hub" or "token": run tether login again`);
  }
  return {
    hub: saved.hub,
    token: saved.token,
    ...(typeof saved.caCert === 'string' ? { caCert: saved.caCert } : {}),
    ...(saved.caPinned === true ? { caPinned: true } : {}),
  };
}

/** The token is a secret: the file is 0600 and its directory 0700, whatever the umask. */
export async function saveConfig(file: string, config: SavedConfig): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`, 0o600);
}

export function fingerprintFlag(text: string, source: string): string {
  const fingerprint = normalizeCaFingerprint(text);
  if (!fingerprint) throw new UsageError(`${source}: "${text.slice(0, 80)}" is not a CA fingerprint (sha256: and 64 hex digits)`);
  return fingerprint;
}

export async function readCaFile(file: string): Promise<string> {
  try {
    const pem = await readFile(file, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
    return pem;
  } catch (error) {
    throw new CliError(`--ca-cert ${file}: ${(error as Error).message}`);
  }
}

/**
 * Hub, token and trust, each from the first that has it: flags, then TETHER_HUB / TETHER_TOKEN /
 * TETHER_CA_CERT / TETHER_CA_FINGERPRINT, then the saved config. The saved token and CA are used
 * only for the saved hub: a token is never sent to another hub than the one it was saved for.
 */
export async function resolveConnection(flags: GlobalFlags, io: CliIo): Promise<Connection> {
  const file = configPath(flags, io);
  const saved = await loadConfig(file);
  const hubText = flags.hub ?? io.env.TETHER_HUB;
  const hub = hubText !== undefined ? hubUrl(hubText, flags.hub !== undefined ? '--hub' : 'TETHER_HUB') : saved ? hubUrl(saved.hub, file) : null;
  if (!hub) throw new UsageError('no hub: give --hub URL, set TETHER_HUB, or run tether login HUB --token TOKEN');
  const savedHere = saved !== null && hubUrl(saved.hub, file).origin === hub.origin ? saved : null;
  const token = flags.token ?? io.env.TETHER_TOKEN ?? savedHere?.token;
  if (!token) throw new UsageError(`no token for ${hub.origin}: give --token, set TETHER_TOKEN, or run tether login ${hub.origin} --token TOKEN`);
  return { hub, token, trust: await resolveTrust(flags, io, savedHere) };
}

export async function resolveTrust(flags: GlobalFlags, io: CliIo, saved: SavedConfig | null): Promise<HubTrust> {
  const caFile = flags.caCert ?? io.env.TETHER_CA_CERT;
  if (caFile) return { kind: 'ca', pem: await readCaFile(caFile), checkName: true };
  const fingerprintText = flags.caFingerprint ?? io.env.TETHER_CA_FINGERPRINT;
  if (fingerprintText) return { kind: 'fingerprint', fingerprint: fingerprintFlag(fingerprintText, flags.caFingerprint ? '--ca-fingerprint' : 'TETHER_CA_FINGERPRINT') };
  if (saved?.caCert) return { kind: 'ca', pem: saved.caCert, checkName: saved.caPinned !== true };
  return { kind: 'system' };
}
