import { readFileSync } from 'node:fs';

/** Set by the agent's bundle (scripts/bundle-agent.mjs): a device has no package.json beside it. */
declare const __TETHER_VERSION__: string | undefined;

/** The package version, read once from package.json (dist/shared -> ../../package.json, or shared -> ../package.json). */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tether' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0-unknown';
}

export const TETHER_VERSION = typeof __TETHER_VERSION__ === 'string' ? __TETHER_VERSION__ : readVersion();
