import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

/** Far above the bundle's few MiB: a bound on what the hub holds in memory to serve it. */
const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

export interface InstallerFiles {
  /** The repo's install.sh; null: none found (the routes answer 503). */
  installScript: string | null;
  /** dist/agent/tether-agent.js, as `npm run build` writes it, with its `.sha256` beside it. */
  agentBundle: string;
}

/**
 * The checkout's root: the first directory up from this module holding install.sh and
 * package.json. This module runs as hub/http/installer.ts (tests), dist/hub/http/installer.js, or
 * inside the bundled dist/hub/main.js: each is a different depth below the root.
 */
function checkoutRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'install.sh')) && existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export function defaultInstallerFiles(): InstallerFiles {
  const root = checkoutRoot();
  return {
    installScript: root && path.join(root, 'install.sh'),
    agentBundle: path.join(root ?? process.cwd(), 'dist', 'agent', 'tether-agent.js'),
  };
}

interface LoadedBundle {
  bytes: Buffer;
  checksumLine: string;
  /** What the files looked like when read: another build changes it. */
  version: string;
}

const notBuilt = (file: string) =>
  new ApiError(503, 'agent_bundle_missing', `the agent bundle ${file} is not there: this hub runs from sources without a build; run npm run build`);

/**
 * The bundle and its checksum, read together and checked against each other: a build writes the
 * bundle first and the checksum after, so a pair that does not match is a build in progress (503,
 * try again), never a truncated bundle served with a checksum made up to match it. Read again
 * when either file changes, so a running hub serves what the last build wrote.
 */
class AgentBundle {
  private loaded: LoadedBundle | null = null;
  /**
   * The read under way: devices that ask at once (a fleet installed by a script, right after a
   * hub start or a build) share it, rather than each holding a copy of the bundle in memory.
   */
  private loading: { version: string; bundle: Promise<LoadedBundle> } | null = null;

  constructor(private readonly file: string) {}

  async get(): Promise<LoadedBundle> {
    const version = await this.version();
    if (this.loaded?.version === version) return this.loaded;
    if (this.loading?.version !== version) {
      const loading = { version, bundle: this.load(version) };
      this.loading = loading;
      const done = () => {
        if (this.loading === loading) this.loading = null;
      };
      loading.bundle.then(done, done);
    }
    return this.loading!.bundle;
  }

  private async load(version: string): Promise<LoadedBundle> {
    const [bytes, checksumLine] = await Promise.all([readFile(this.file), readFile(`${this.file}.sha256`, 'utf8')]).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw notBuilt(this.file);
      throw error;
    });
    const expected = /^([0-9a-f]{64}) {2}tether-agent\.js\n?$/.exec(checksumLine)?.[1];
    if (!expected || createHash('sha256').update(bytes).digest('hex') !== expected || (await this.version()) !== version) {
      throw new ApiError(503, 'agent_bundle_changing', 'the agent bundle is being rebuilt (it does not match its checksum yet): try again in a few seconds');
    }
    this.loaded = { bytes, checksumLine, version };
    return this.loaded;
  }

  private async version(): Promise<string> {
    try {
      const [bundle, sum] = await Promise.all([stat(this.file), stat(`${this.file}.sha256`)]);
      if (bundle.size > MAX_BUNDLE_BYTES) throw new ApiError(503, 'agent_bundle_too_large', `${this.file} is ${bundle.size} bytes, more than the hub serves (${MAX_BUNDLE_BYTES})`);
      return `${bundle.mtimeMs}:${bundle.size}:${sum.mtimeMs}:${sum.size}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notBuilt(this.file);
      throw error;
    }
  }
}

/**
 * What a device needs to install an agent: install.sh and the agent bundle with its checksum.
 * Unauthenticated: none of it is secret, and a device has no credential yet. install.sh is read
 * once, at start (it ships with the hub); the bundle when asked for (a build may come later).
 */
export async function installerRoutes(app: FastifyInstance, given: Partial<InstallerFiles> = {}): Promise<void> {
  const files: InstallerFiles = { ...defaultInstallerFiles(), ...given };
  let script: string | null = null;
  if (files.installScript !== null) {
    try {
      script = readFileSync(files.installScript, 'utf8');
    } catch (error) {
      app.log.warn({ err: error, file: files.installScript }, 'install.sh cannot be read: GET /install.sh answers 503');
    }
  }
  const bundle = new AgentBundle(files.agentBundle);

  app.get('/install.sh', async (_request, reply) => {
    if (script === null) throw new ApiError(503, 'install_script_missing', `this hub has no install.sh to serve (looked for ${files.installScript ?? 'install.sh above the hub\'s files'})`);
    return reply.type('text/x-shellscript; charset=utf-8').header('cache-control', 'no-cache').send(script);
  });
  app.get('/agent/tether-agent.js', async (_request, reply) => {
    const { bytes } = await bundle.get();
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(bytes);
  });
  app.get('/agent/tether-agent.js.sha256', async (_request, reply) => {
    const { checksumLine } = await bundle.get();
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(checksumLine);
  });
}
