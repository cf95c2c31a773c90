#!/usr/bin/env node
/** `tether-agent`: the daemon on every edge device. The only place that exits the process. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Backoff } from '../shared/backoff.js';
import { parseCommandLine } from '../shared/command-line.js';
import { logDestination } from '../shared/log-format.js';
import { ensurePrivateDir, restrictNewFiles } from '../shared/private-files.js';
import { TETHER_VERSION } from '../shared/version.js';
import { Agent, RUNTIME_UNKNOWN } from './agent.js';
import { defaultAdvertiseAddress, readDeviceFacts } from './device-facts.js';
import { normalizeCaFingerprint } from '../shared/ca-fingerprint.js';
import { joinHub, JoinRefusedError, JoinThrottledError, loadIdentity, saveIdentity, type NodeIdentity } from './node-identity.js';
import { fetchPinnedCa, loadPinnedCa, PinMismatchError, savePinnedCa, type PinnedCa } from './tls/pinned-ca.js';
import { loadRegistryAuthFile, type RegistryAuthMap } from './registry-auth-file.js';
import { DockerRuntime } from './runtime/docker-runtime.js';
import { DockerContainerLogs } from './logs/container-logs.js';
import { RestartCountsFile } from './restart-counts-file.js';
import { TargetCache } from './target-cache.js';
import { ValueFileStore } from './values/value-file-store.js';
import type { Logger } from '../shared/logger.js';

const HELP = `Usage: tether-agent --data-dir DIR [--hub URL --join-token TOKEN] [options]

Runs the Tether agent: joins a hub, runs the containers the hub assigns to this device through
the Docker engine, and keeps running them while the hub is unreachable.

Options:
  --hub URL                  the hub, e.g. https://hub.example:7070 (needed to join)
  --join-token TOKEN         a join token from the hub (needed once, at the first start); or
                             TETHER_JOIN_TOKEN, which keeps it out of the process's arguments
                             (any local user can read those)
  --ca-fingerprint sha256:HEX
                             the hub's CA, as the hub prints it in its join command (needed
                             once, with an https:// hub): the agent keeps that CA
                             (DATA_DIR/hub-ca.pem) and refuses any hub certificate it did
                             not sign
  --data-dir DIR             where the node credential and the cached target live
                             (default /var/lib/tether-agent)
  --name NAME                node name, unique among the hub's nodes (default: the host name,
                             or the host name and a random suffix when another node has it)
  --label key=value          a node label, used by placement constraints (repeatable)
  --advertise-address IP     the address other machines reach this node on (default: first
                             non-loopback IPv4 address)
  --publish-address IP       the address host ports are published on (default: all interfaces)
  --docker-socket PATH       the Docker engine socket (default /var/run/docker.sock); the
                             agent also starts without an engine, reports it unavailable
                             and runs its containers once the engine answers
  --secrets-dir DIR          where the files of secrets live (default DATA_DIR/secrets): a
                             tmpfs (memory only, never the device's disk), mounted there by
                             the agent at the first secret when it is not one; configs'
                             files are in DATA_DIR/configs
  --no-offline-secrets       keep secrets in memory only, never in the cached target: after a
                             reboot without the hub, a replica that needs a secret waits for
                             the hub (by default they are cached, sealed with DATA_DIR/cache.key)
  --registry-auth-file PATH  registry credentials for pulls whose service spec has no
                             registryAuth: a JSON file keyed by registry host[:port], e.g.
                             { "127.0.0.1:5001": { "username": "u", "password": "p" } }
  --log-level LEVEL          fatal, error, warn, info, debug (default info)
  --log-format FORMAT        json or pretty (readable lines); by default pretty on a terminal
                             and json otherwise (systemd's journal); also TETHER_LOG_FORMAT
  -h, --help                 show this help
  -v, --version              show the version
`;

function fail(message: string): never {
  process.stderr.write(`tether-agent: ${message}\n`);
  process.exit(2);
}

function parseLabels(items: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) fail(`--label must be key=value, got "${item}"`);
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return labels;
}

function checkUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail(`--hub must be a URL like http://hub.example:7070, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`--hub must start with http:// or https://, got "${text}"`);
  return url.origin;
}

async function main(): Promise<void> {
  restrictNewFiles();
  const parsed = parseCommandLine('tether-agent', HELP, {
    hub: { type: 'string' },
    'join-token': { type: 'string' },
    'data-dir': { type: 'string' },
    name: { type: 'string' },
    label: { type: 'string', multiple: true },
    'advertise-address': { type: 'string' },
    'publish-address': { type: 'string' },
    'docker-socket': { type: 'string' },
    'registry-auth-file': { type: 'string' },
    'secrets-dir': { type: 'string' },
    'no-offline-secrets': { type: 'boolean' },
    'ca-fingerprint': { type: 'string' },
  });
  if (!parsed) return;
  const { values: args, logLevel: level, logFormat } = parsed;
  const logStream = await logDestination(logFormat, { colorize: process.stdout.isTTY === true });
  const logger = logStream ? pino({ level, name: 'tether-agent' }, logStream) : pino({ level, name: 'tether-agent' });
  const dataDir = path.resolve(args['data-dir'] ?? '/var/lib/tether-agent');
  const labels = parseLabels(args.label ?? []);
  const hubUrl = args.hub ? checkUrl(args.hub) : null;
  let registryAuth: RegistryAuthMap | undefined;
  if (args['registry-auth-file'] !== undefined) {
    try {
      registryAuth = await loadRegistryAuthFile(path.resolve(args['registry-auth-file']));
    } catch (error) {
      fail(`--registry-auth-file: ${(error as Error).message}`);
    }
  }
  let givenFingerprint: string | null = null;
  if (args['ca-fingerprint'] !== undefined) {
    givenFingerprint = normalizeCaFingerprint(args['ca-fingerprint']);
    if (givenFingerprint === null) fail(`--ca-fingerprint must be sha256: and 64 hex digits, as the hub prints it; got "${args['ca-fingerprint']}"`);
  }
  await ensurePrivateDir(dataDir);

  let identity: NodeIdentity | null;
  try {
    identity = await loadIdentity(dataDir);
  } catch (error) {
    fail((error as Error).message);
  }
  if (identity && hubUrl && hubUrl !== identity.hubUrl) {
    logger.warn({ stored: identity.hubUrl, given: hubUrl }, 'this node joined another hub URL; using the given one');
    identity = { ...identity, hubUrl };
    await saveIdentity(dataDir, identity);
  }
  const joinToken = args['join-token'] ?? (process.env.TETHER_JOIN_TOKEN || undefined);
  // Used once, here: nothing the agent starts later inherits it.
  delete process.env.TETHER_JOIN_TOKEN;
  if (!identity && (!hubUrl || !joinToken)) fail(`this node has not joined a hub yet: pass --hub URL and --join-token TOKEN (or TETHER_JOIN_TOKEN) (data dir ${dataDir})`);
  const pinnedCa = await hubCa(dataDir, (identity?.hubUrl ?? hubUrl)!, givenFingerprint, logger);
  if (!identity) {
    identity = await joinWithRetry(hubUrl!, joinToken!, args.name ?? null, labels, logger, pinnedCa?.pem ?? null);
    await saveIdentity(dataDir, identity);
    logger.info({ nodeId: identity.nodeId, hub: hubUrl }, 'joined the hub; the node credential is stored in the data dir');
  }

  const runtime = new DockerRuntime({ socketPath: args['docker-socket'], logger, registryAuth });
  // An engine away at start is no reason to exit (under systemd that is a restart loop that also
  // keeps the hub from hearing anything): the agent runs, reports the engine unavailable, and
  // checks again until it answers. Its version is asked for once it answers, before the first
  // hello if it answers at start.
  // The name it says at hello: the one given now, else the one it joined with (a different one is
  // only a request the operator may accept).
  const name = args.name ?? identity.name ?? os.hostname();
  const agent = new Agent({
    identity,
    pinnedCa,
    name,
    labels,
    advertiseAddress: args['advertise-address'] ?? defaultAdvertiseAddress(),
    publishAddress: args['publish-address'] ?? null,
    runtime,
    logs: new DockerContainerLogs({ socketPath: args['docker-socket'] ?? '/var/run/docker.sock', nodeId: identity.nodeId }),
    dataDir,
    identityDir: dataDir,
    targetCache: new TargetCache(dataDir, { offlineSecrets: args['no-offline-secrets'] !== true, logger }),
    valueFiles: {
      secrets: new ValueFileStore({ source: 'secret', dir: path.resolve(args['secrets-dir'] ?? path.join(dataDir, 'secrets')) }),
      configs: new ValueFileStore({ source: 'config', dir: path.join(dataDir, 'configs') }),
    },
    restartCounts: new RestartCountsFile(dataDir, logger),
    facts: await readDeviceFacts(RUNTIME_UNKNOWN),
    logger,
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping (containers keep running)');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  await agent.start();
  logger.info({ nodeId: identity.nodeId, hub: identity.hubUrl, version: TETHER_VERSION }, 'agent started');
}

/**
 * The CA every connection to an https:// hub must chain to: the one pinned in the data dir, or,
 * at the first start, the one with the given fingerprint in the chain the hub presents (pinned
 * then). Never trust on first use: an https:// hub without either is refused.
 */
async function hubCa(dataDir: string, hubUrl: string, givenFingerprint: string | null, logger: Pick<Logger, 'warn' | 'info'>): Promise<PinnedCa | null> {
  let pinned: PinnedCa | null;
  try {
    pinned = await loadPinnedCa(dataDir);
  } catch (error) {
    fail((error as Error).message);
  }
  if (!hubUrl.startsWith('https:')) {
    if (givenFingerprint !== null) fail(`--ca-fingerprint pins the CA of an https:// hub; the hub is ${hubUrl}`);
    return null;
  }
  if (pinned) {
    if (givenFingerprint !== null && givenFingerprint !== pinned.fingerprint) {
      fail(`this node pinned the hub CA ${pinned.fingerprint}, not ${givenFingerprint}: remove ${path.join(dataDir, 'hub-ca.pem')} to pin another (only if the hub's CA was truly replaced)`);
    }
    return pinned;
  }
  if (givenFingerprint === null) {
    fail(`the hub ${hubUrl} is https: pass --ca-fingerprint sha256:... (in the join command the hub prints at start, and in each join token's answer) so that the agent knows which hub to trust`);
  }
  const backoff = new Backoff({ baseMs: 1000, capMs: 30_000 });
  for (;;) {
    try {
      const pem = await fetchPinnedCa(new URL(hubUrl), givenFingerprint);
      await savePinnedCa(dataDir, pem);
      logger.info({ hub: hubUrl, ca: givenFingerprint }, "pinned the hub's CA: every connection to the hub must chain to it");
      return { pem, fingerprint: givenFingerprint };
    } catch (error) {
      if (error instanceof PinMismatchError) fail(error.message);
      const delayMs = Math.max(500, backoff.nextDelayMs());
      logger.warn({ hub: hubUrl, err: (error as Error).message, retryInMs: delayMs }, "cannot reach the hub to read its CA; retrying");
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

/** The hub may not be up yet (a device provisioned first): retry until it answers yes or no. */
async function joinWithRetry(
  hubUrl: string,
  joinToken: string,
  givenName: string | null,
  labels: Record<string, string>,
  logger: Pick<Logger, 'warn'>,
  caPem: string | null,
): Promise<NodeIdentity> {
  const backoff = new Backoff({ baseMs: 1000, capMs: 30_000 });
  let name = givenName ?? os.hostname();
  for (;;) {
    try {
      return await joinHub(hubUrl, joinToken, name, labels, caPem);
    } catch (error) {
      // Node names are unique, and devices flashed from one image share a host name: without
      // --name, the agent joins once more as <hostname>-<6 random hex digits> (kept in node.json).
      if (error instanceof JoinRefusedError && error.hubCode === 'node_name_taken' && givenName === null && name === os.hostname()) {
        const taken = name;
        name = `${taken.slice(0, 120)}-${randomBytes(3).toString('hex')}`;
        logger.warn({ taken, name }, 'another node has this host name; joining under a name of its own (set one with --name)');
        continue;
      }
      if (error instanceof JoinRefusedError) fail(error.message);
      if (error instanceof JoinThrottledError) {
        // Jittered, so that devices behind one address do not come back together.
        const waitMs = Math.round(error.retryAfterMs * (0.5 + Math.random()));
        logger.warn({ hub: hubUrl, retryInMs: waitMs }, error.message);
        await new Promise((r) => setTimeout(r, waitMs));
        continue;
      }
      const delayMs = Math.max(500, backoff.nextDelayMs());
      logger.warn({ hub: hubUrl, err: (error as Error).message, retryInMs: delayMs }, 'cannot reach the hub to join; retrying');
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`tether-agent: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
