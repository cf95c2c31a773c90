import { readFileSync } from 'node:fs';

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

export const TETHER_VERSION = readVersion();
