#!/usr/bin/env node
/** `tether-hub`: the hub process. The only place that exits the process. */
import type https from 'node:https';
import path from 'node:path';
import { parseCommandLine, usageError } from '../shared/command-line.js';
import { logDestination } from '../shared/log-format.js';
import { AGENT_RECONNECT_CAP_MS } from '../shared/protocol.js';
import { restrictNewFiles } from '../shared/private-files.js';
import { buildHub } from './app.js';
import { loadOrCreateAdminToken } from './auth/secrets.js';
import { rotateMasterKey } from './secrets/key-rotation.js';
import { MasterKeyError, openWithMasterKey } from './secrets/master-key-file.js';
import type { MasterKeyring } from './secrets/master-keyring.js';
import { DEFAULT_HUB_CONFIG } from './hub.js';
import { timingsProblem } from './hub-config.js';
import { normalizeAllowedHostPath } from './spec/mounts.js';
import { startBanner } from './start-banner.js';
import { serverKeyPin } from './tls/server-key-pin.js';
import { CertificateReload } from './tls/certificate-reload.js';
import { loadOperatorTls, loadOrCreateHubTls, serverNames, type HubTls } from './tls/hub-certificates.js';
import { LowdbStore } from './store/lowdb-store.js';
import { StoreDamagedError } from './store/store-file-damaged.js';
import { restoreFromPrevious, restoredText } from './store/store-recovery.js';

const HELP = `Usage: tether-hub [options]
       tether-hub rotate-master-key [--data-dir DIR]

Runs the Tether hub: the HTTPS API for operators and the WSS endpoint agents connect to.
The hub makes its own CA and server certificate at the first start (<data-dir>/tls/); agents pin
the CA by its fingerprint, which the join command printed at start carries.
Secrets and registry passwords are encrypted in the store with a master key: the one in
TETHER_MASTER_KEY (base64 of 32 bytes) when set, else <data-dir>/master.key, generated at the
first start. Keep a copy of it apart from the data dir: without it the secrets are lost.

Options:
  --port N                    port to listen on (default 7070)
  --host ADDR                 address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --data-dir DIR              where the store and the admin token live (default ./.tether/hub)
  --heartbeat-interval-ms N   how often agents send a heartbeat (default ${DEFAULT_HUB_CONFIG.heartbeatIntervalMs})
  --heartbeat-grace-ms N      silence after which a node is unreachable (default ${DEFAULT_HUB_CONFIG.heartbeatGraceMs})
  --lost-after-ms N           time unreachable after which a node is lost and its replicas move
                              elsewhere (default ${DEFAULT_HUB_CONFIG.lostAfterMs}; a service may set its own)
  --startup-grace-ms N        after the hub starts, time agents get to reconnect before their
                              absence counts (default ${DEFAULT_HUB_CONFIG.startupGraceMs}; at least the agents'
                              reconnect backoff cap, ${AGENT_RECONNECT_CAP_MS})
  --disruption-percent N      when more than N % of the nodes are away at once (the hub's network,
                              more likely than the devices), no node is declared lost until they
                              are back (default ${Math.round(DEFAULT_HUB_CONFIG.disruptionShare * 100)}; 100 turns this off)
  --max-pending-handshakes N  agent handshakes processed at once; more are told to retry
                              (default ${DEFAULT_HUB_CONFIG.maxPendingHandshakes})
  --max-pending-handshakes-per-address N
                              of those, at most N from one address (an IPv6 /64), so that one
                              device cannot starve the rest (default: three quarters of the pool)
  --allow-host-path PATH      let services mount host paths under PATH into their containers
                              (a spec's binds; repeat the flag for more paths). None by default:
                              a bind gives a container the device's own files
  --recover                   restore each damaged store file from its previous good copy
                              (<file>.prev, with the change log kept with it: writes since that
                              copy are lost), cut a damaged change log at its first bad line,
                              then start; a damaged file without a good copy still stops the start
  --tls-cert FILE             serve HTTPS with this certificate (PEM: the server certificate, then
                              its chain, ending with the root CA that agents pin); with --tls-key
  --tls-key FILE              the private key of --tls-cert (PEM)
  --tls-san NAME              another name or address for the hub's own server certificate (by
                              default: localhost, 127.0.0.1, ::1, the host name and --host);
                              repeat the flag for more
  --insecure-http             serve plain HTTP and WebSocket, for local development only: anyone
                              on the path can read and change what the hub and agents say
  --log-level LEVEL           fatal, error, warn, info, debug (default info)
  --log-format FORMAT         json or pretty (readable lines); by default pretty on a terminal
                              and json otherwise; also TETHER_LOG_FORMAT
  -h, --help                  show this help
  -v, --version               show the version

Commands:
  rotate-master-key           re-encrypt every secret and registry password with a new master
                              key (see tether-hub rotate-master-key --help)
`;

const ROTATE_HELP = `Usage: tether-hub rotate-master-key [--data-dir DIR]

Generates a new master key, re-encrypts every secret and registry password in the store with it,
and leaves nothing encrypted with the old one on disk. Stop the hub first: the store has no lock,
and a running hub would write over the re-encrypted records with its own.

With the key in master.key, the new key replaces it (the old one is kept as master.key.prev until
every record is written; run the command again should it stop before it says it is done). With
TETHER_MASTER_KEY set, the new key is printed once: set the variable to it before starting the
hub (this command cannot change the hub's environment).

Options:
  --data-dir DIR              the hub's data dir (default ./.tether/hub)
  -h, --help                  show this help
`;

const fail = (message: string): never => usageError('tether-hub', message);

function positiveInt(name: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got "${text}"`);
  return n;
}

async function main(): Promise<void> {
  restrictNewFiles();
  if (process.argv[2] === 'rotate-master-key') {
    // The rest of the command line is the subcommand's flags.
    process.argv.splice(2, 1);
    return rotateCommand();
  }
  const parsed = parseCommandLine('tether-hub', HELP, {
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    'heartbeat-interval-ms': { type: 'string' },
    'heartbeat-grace-ms': { type: 'string' },
    'lost-after-ms': { type: 'string' },
    'startup-grace-ms': { type: 'string' },
    'max-pending-handshakes': { type: 'string' },
    'max-pending-handshakes-per-address': { type: 'string' },
    'disruption-percent': { type: 'string' },
    recover: { type: 'boolean' },
    'allow-host-path': { type: 'string', multiple: true },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-san': { type: 'string', multiple: true },
    'insecure-http': { type: 'boolean' },
  });
  if (!parsed) return;
  const { values: args, logLevel: level, logFormat } = parsed;
  const logStream = await logDestination(logFormat, { colorize: process.stdout.isTTY === true });

  const port = positiveInt('port', args.port, 7070, 0);
  if (port > 65535) fail(`--port must be at most 65535, got ${port}`);
  const host = args.host ?? '127.0.0.1';
  const dataDir = path.resolve(args['data-dir'] ?? '.tether/hub');
  const heartbeatIntervalMs = positiveInt('heartbeat-interval-ms', args['heartbeat-interval-ms'], DEFAULT_HUB_CONFIG.heartbeatIntervalMs, 100);
  const heartbeatGraceMs = positiveInt('heartbeat-grace-ms', args['heartbeat-grace-ms'], DEFAULT_HUB_CONFIG.heartbeatGraceMs, 1);
  const lostAfterMs = positiveInt('lost-after-ms', args['lost-after-ms'], DEFAULT_HUB_CONFIG.lostAfterMs, 1000);
  const startupGraceMs = positiveInt('startup-grace-ms', args['startup-grace-ms'], DEFAULT_HUB_CONFIG.startupGraceMs, 0);
  const timings = { heartbeatIntervalMs, heartbeatGraceMs, lostAfterMs, startupGraceMs };
  const problem = timingsProblem(timings);
  if (problem !== null) fail(problem);
  const disruptionPercent = args['disruption-percent'] === undefined ? Math.round(DEFAULT_HUB_CONFIG.disruptionShare * 100) : Number(args['disruption-percent']);
  if (!Number.isInteger(disruptionPercent) || disruptionPercent < 1 || disruptionPercent > 100) {
    fail(`--disruption-percent must be an integer from 1 to 100, got "${args['disruption-percent']}"`);
  }
  const maxPendingHandshakes = positiveInt('max-pending-handshakes', args['max-pending-handshakes'], DEFAULT_HUB_CONFIG.maxPendingHandshakes, 1);
  const perAddress = args['max-pending-handshakes-per-address'];
  const maxPendingHandshakesPerAddress = perAddress === undefined ? null : positiveInt('max-pending-handshakes-per-address', perAddress, 1, 1);
  if (maxPendingHandshakesPerAddress !== null && maxPendingHandshakesPerAddress > maxPendingHandshakes) {
    fail(`--max-pending-handshakes-per-address (${maxPendingHandshakesPerAddress}) cannot be more than --max-pending-handshakes (${maxPendingHandshakes})`);
  }

  const insecureHttp = args['insecure-http'] === true;
  if ((args['tls-cert'] === undefined) !== (args['tls-key'] === undefined)) fail('--tls-cert and --tls-key go together');
  if (insecureHttp && (args['tls-cert'] !== undefined || args['tls-san'] !== undefined)) fail('--insecure-http serves no certificate: drop --tls-cert, --tls-key and --tls-san');
  if (args['tls-cert'] !== undefined && args['tls-san'] !== undefined) fail('--tls-san names the hub\'s own certificate: with --tls-cert, the names are those of your certificate');

  const allowedHostPaths: string[] = [];
  for (const text of args['allow-host-path'] ?? []) {
    const normalized = normalizeAllowedHostPath(text);
    if (!normalized.ok) fail(`--allow-host-path ${normalized.error}`);
    else if (!allowedHostPaths.includes(normalized.path)) allowedHostPaths.push(normalized.path);
  }

  let opened: { admin: Awaited<ReturnType<typeof loadOrCreateAdminToken>>; store: LowdbStore; keyring: MasterKeyring };
  try {
    const admin = await loadOrCreateAdminToken(dataDir);
    // The key is checked against every sealed value as the store opens; a generated one is
    // written only once the store proved to hold none under another.
    const keyed = await openWithMasterKey(dataDir, process.env, (sealer) => openStore(path.join(dataDir, 'store'), args.recover === true, sealer));
    // Only now that the key is on disk (or in the environment) may clear passwords be sealed with it.
    await keyed.opened.sealClearPasswords();
    opened = { admin, store: keyed.opened, keyring: keyed.keyring };
  } catch (error) {
    if (error instanceof MasterKeyError) {
      // Never serve values it cannot read, nor seal new ones under a key that strands the old.
      process.stderr.write(`tether-hub: ${error.message}\n`);
      process.exit(1);
    }
    if (error instanceof StoreDamagedError) {
      // Never start without part of the store: its services would vanish and their containers
      // be removed. The operator decides, told what is wrong with each file and what to do.
      for (const file of error.files) {
        const line = file.advice();
        process.stderr.write(`tether-hub: ${line}${args.recover === true ? ' (--recover cannot restore it)' : ''}\n`);
      }
      process.exit(1);
    }
    // A full disk or an unwritable data dir is the operator's to fix: one line, not a stack trace.
    const reason = cannotWriteReason(error);
    if (reason === null) throw error;
    process.stderr.write(`tether-hub: cannot write to ${dataDir}: ${reason}\n`);
    process.exit(1);
  }
  const { token: adminToken, file: adminTokenFile, created: adminTokenCreated } = opened.admin;
  let tls: HubTls | undefined;
  try {
    tls = insecureHttp ? undefined : await hubTls(dataDir, host, args);
  } catch (error) {
    process.stderr.write(`tether-hub: cannot set up TLS: ${(error as Error).message}\n`);
    process.exit(1);
  }
  const store = opened.store;
  const { app } = await buildHub({
    store,
    adminToken,
    dataDir,
    sealer: opened.keyring,
    config: { ...timings, maxPendingHandshakes, maxPendingHandshakesPerAddress, disruptionShare: disruptionPercent / 100, allowedHostPaths },
    // Named in readable lines only, to tell it from the agent's in npm start: in JSON a base `name`
    // would collide with the node `name` some records carry.
    logger: { level, ...(logStream ? { name: 'tether-hub', stream: logStream } : {}) },
    firstPassOnListen: true,
    ...(tls ? { tls } : {}),
  });

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  try {
    // A hub restart sees every agent of the fleet reconnect within seconds: a deeper accept queue
    // than Node's 511 keeps their connections waiting instead of reset (the kernel caps it at somaxconn).
    await app.listen({ port, host, backlog: 4096 });
  } catch (error) {
    fail(`cannot listen on ${host}:${port}: ${(error as Error).message}`);
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '<this-machine-address>' : host.includes(':') ? `[${host}]` : host;
  const url = `${tls ? 'https' : 'http'}://${shownHost}:${actualPort}`;
  process.stdout.write(
    startBanner({
      url,
      dataDir,
      adminToken,
      adminTokenFile,
      adminTokenCreated,
      toTerminal: process.stdout.isTTY === true,
      caFingerprint: tls?.caFingerprint ?? null,
      caFile: tls && args['tls-cert'] === undefined ? path.join(dataDir, 'tls', 'ca.crt') : null,
      serverKeyPin: tls ? serverKeyPin(tls.key) : null,
    }),
  );
  if (tls) {
    // Renewed certificates are served without a restart; see certificate-reload.ts.
    const server = app.server as https.Server;
    const reload = new CertificateReload({
      load: () => reloadTls(dataDir, host, args),
      apply: (next) => server.setSecureContext({ key: next.key, cert: next.cert }),
      current: tls,
      logger: app.log,
    });
    reload.start();
    // As web servers do: an operator who replaced the files need not wait for the hourly look.
    process.on('SIGHUP', () => void reload.check());
  }
  if (!tls) app.log.warn('--insecure-http: serving plain HTTP and WebSocket; anyone on the path can read the fleet\'s traffic and impersonate the hub');
  // Said at every start, in the log: which parts of the devices' disks services may reach.
  if (allowedHostPaths.length > 0) app.log.warn({ allowedHostPaths }, 'services may mount these host paths into their containers');
  else app.log.info('services may not mount host paths (no --allow-host-path)');
}

/** The operator's certificate, or the hub's own CA and server certificate in <data-dir>/tls. */
async function hubTls(dataDir: string, host: string, args: { 'tls-cert'?: string; 'tls-key'?: string; 'tls-san'?: string[] }): Promise<HubTls> {
  if (args['tls-cert'] !== undefined && args['tls-key'] !== undefined) return loadOperatorTls(path.resolve(args['tls-cert']), path.resolve(args['tls-key']));
  const own = await loadOrCreateHubTls(path.join(dataDir, 'tls'), serverNames(host, args['tls-san'] ?? []));
  if (own.caCreated) process.stderr.write(`tether-hub: made a new CA in ${path.join(dataDir, 'tls')} (fingerprint ${own.caFingerprint})\n`);
  else if (own.serverIssuedBecause !== null) process.stderr.write(`tether-hub: issued a new server certificate (the previous one: ${own.serverIssuedBecause})\n`);
  return own;
}

/** What a running hub serves now: the operator's files as they are, or its own server certificate, issued again near its end. */
async function reloadTls(dataDir: string, host: string, args: { 'tls-cert'?: string; 'tls-key'?: string; 'tls-san'?: string[] }): Promise<HubTls> {
  if (args['tls-cert'] !== undefined && args['tls-key'] !== undefined) return loadOperatorTls(path.resolve(args['tls-cert']), path.resolve(args['tls-key']));
  return loadOrCreateHubTls(path.join(dataDir, 'tls'), serverNames(host, args['tls-san'] ?? []), new Date(), { makeCa: false });
}

/**
 * Opens the store; with `recover`, each damaged file that has a good previous copy is restored
 * from it, and the store opened again. Damaged files without one are not touched: the
 * StoreDamagedError that names them goes up, and the start stops on it.
 */
async function openStore(dir: string, recover: boolean, sealer: MasterKeyring): Promise<LowdbStore> {
  const store = new LowdbStore({ dir, sealer });
  try {
    await store.open();
    return store;
  } catch (error) {
    if (!recover || !(error instanceof StoreDamagedError)) throw error;
    const restorable = error.files.filter((f) => f.restorable);
    for (const restored of await restoreFromPrevious(restorable)) process.stderr.write(`tether-hub: ${restoredText(restored)}\n`);
    if (restorable.length < error.files.length) throw new StoreDamagedError(error.files.filter((f) => !f.restorable));
  }
  const again = new LowdbStore({ dir, sealer });
  await again.open();
  return again;
}

/** `tether-hub rotate-master-key`: see ROTATE_HELP and key-rotation.ts. */
async function rotateCommand(): Promise<void> {
  const parsed = parseCommandLine('tether-hub rotate-master-key', ROTATE_HELP, { 'data-dir': { type: 'string' } });
  if (!parsed) return;
  const dataDir = path.resolve(parsed.values['data-dir'] ?? '.tether/hub');
  try {
    await rotateMasterKey({
      dataDir,
      env: process.env,
      openStore: async (sealer) => {
        const store = new LowdbStore({ dir: path.join(dataDir, 'store'), sealer });
        await store.open();
        return store;
      },
      print: (line) => process.stdout.write(`${line}\n`),
    });
  } catch (error) {
    if (error instanceof MasterKeyError) {
      process.stderr.write(`tether-hub: ${error.message}\n`);
      process.exit(1);
    }
    if (error instanceof StoreDamagedError) {
      for (const file of error.files) process.stderr.write(`tether-hub: ${file.advice()} (start the hub with --recover first)\n`);
      process.exit(1);
    }
    const reason = cannotWriteReason(error);
    if (reason === null) throw error;
    process.stderr.write(`tether-hub: cannot write to ${dataDir}: ${reason} (run the command again once it can: no value is lost meanwhile)\n`);
    process.exit(1);
  }
}

/** Errno codes that mean the data dir cannot be written; null for any other error. */
const CANNOT_WRITE_CODES: Record<string, string> = {
  ENOSPC: 'no space left on the device (disk full)',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only filesystem',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
};

function cannotWriteReason(error: unknown): string | null {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code !== undefined && code in CANNOT_WRITE_CODES ? `${CANNOT_WRITE_CODES[code]} (${code})` : null;
}

main().catch((error: unknown) => {
  process.stderr.write(`tether-hub: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
