import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '../shared/clock.js';
import { TETHER_VERSION } from '../shared/version.js';
import { FileAuditLog } from './audit/audit-log.js';
import type { AuditTrail } from './audit/audit-trail.js';
import { MemoryAuditTrail } from './audit/memory-audit-trail.js';
import { installAccessControl } from './auth/access-control.js';
import { ApiTokens } from './auth/api-tokens.js';
import { apiTokenRoutes } from './http/api-tokens.js';
import { auditRoutes } from './http/audit.js';
import { eventRoutes } from './http/events.js';
import { namedValueRoutes } from './http/configs-and-secrets.js';
import { frameworkErrors, registerErrorHandling } from './http/errors.js';
import { installerRoutes } from './http/installer.js';
import { joinRoutes } from './http/join.js';
import { logRoutes } from './http/logs.js';
import { nodeRoutes } from './http/nodes.js';
import { registerApiReference } from './http/openapi.js';
import { requestValidatorCompiler, routeSchema } from './http/route-schema.js';
import { serviceRoutes } from './http/services.js';
import { DEFAULT_HUB_CONFIG, Hub, type HubConfig } from './hub.js';
import { hubMetrics } from './metrics.js';
import { MasterKeyring, type ValueSealer } from './secrets/master-keyring.js';
import type { Store } from './store/store.js';
import type { HubTls } from './tls/hub-certificates.js';
import { serverKeyPin } from './tls/server-key-pin.js';

export interface BuildHubOptions {
  store: Store;
  /** The first admin token (the data dir's admin-token file): an admin named "admin", besides the API tokens. */
  adminToken: string;
  /** The hub's data dir: the audit log goes in `<dataDir>/audit`. Absent (tests): the audit is kept in memory. */
  dataDir?: string;
  config?: Partial<HubConfig>;
  clock?: Clock;
  /** fastify logger option: false in tests, pino options in main. */
  logger?: boolean | object;
  /**
   * Hold the loop's first pass until the server listens: a hub restarted on a big store answers
   * /healthz and takes agents sooner, and the pass has nothing to send before they connect. Off
   * for tests that only inject requests (they never listen).
   */
  firstPassOnListen?: boolean;
  /**
   * Seals secrets with the master key: the store's own, so that what one seals the other opens.
   * Absent (tests that keep no secret across a restart): a key of this process alone.
   */
  sealer?: ValueSealer;
  /** Serve HTTPS and WSS with this key and certificate chain; absent (--insecure-http, tests): plain HTTP. */
  tls?: HubTls;
}

/**
 * Builds the hub without listening, so tests can use app.inject() or listen on port 0. The store
 * must be open. The agent gateway attaches to the HTTP server once it listens.
 */
export async function buildHub(opts: BuildHubOptions): Promise<{ app: FastifyInstance; hub: Hub }> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 1024 * 1024,
    // The hub holds tens of thousands of agent sockets; HTTP keep-alive sockets are for operators.
    keepAliveTimeout: 10_000,
    frameworkErrors,
    ...(opts.tls ? { https: { key: opts.tls.key, cert: opts.tls.cert } } : {}),
  }) as unknown as FastifyInstance;
  const sealer = opts.sealer ?? new MasterKeyring(randomBytes(32));
  const clock = opts.clock ?? systemClock;
  const hub = new Hub(opts.store, { ...DEFAULT_HUB_CONFIG, ...opts.config }, clock, app.log, sealer);
  hub.gateway.attach(app.server);
  registerErrorHandling(app);
  // First, so that every route after it has a rule (route-rules.ts) and is checked against it.
  const tokens = new ApiTokens({ store: opts.store, adminToken: opts.adminToken, clock });
  const audit: AuditTrail = opts.dataDir ? new FileAuditLog(path.join(opts.dataDir, 'audit'), { logger: app.log }) : new MemoryAuditTrail();
  installAccessControl(app, { tokens, audit, clock, failures: hub.authFailures });
  // Before the routes: a schema a route declares checks its requests with our Validator and our
  // 400 (route-schema.ts), and the API reference learns each route as it is added.
  app.setValidatorCompiler(requestValidatorCompiler());
  await registerApiReference(app);

  // 503 while the store cannot write, so that a supervisor or load balancer can act on it.
  app.get('/healthz', routeSchema({ summary: "The hub's health: 503 while its store cannot write", tags: ['hub'] }), async (_request, reply) => {
    const { ok, error, since } = hub.stats.store.health();
    const body = { status: ok ? 'ok' : 'failing', version: TETHER_VERSION, connectedNodes: hub.stats.agents.connectedCount, store: { ok, error, since } };
    return reply.status(ok ? 200 : 503).send(body);
  });
  await app.register(joinRoutes, {
    nodes: hub.nodes,
    adminToken: opts.adminToken,
    authFailures: hub.authFailures,
    ...(opts.tls ? { caFingerprint: opts.tls.caFingerprint, serverKeyPin: serverKeyPin(opts.tls.key) } : {}),
  });
  await app.register(installerRoutes);
  const metrics = hubMetrics(hub.stats, audit, hub.eventStreams);
  await app.register(async (api) => {
    await api.register(nodeRoutes, { nodes: hub.nodes });
    await api.register(serviceRoutes, { services: hub.services, specContext: { values: hub.values, allowedHostPaths: hub.config.allowedHostPaths } });
    await api.register(namedValueRoutes<'config'>, { values: hub.configs });
    await api.register(namedValueRoutes<'secret'>, { values: hub.secrets });
    await api.register(apiTokenRoutes, { tokens });
    await api.register(auditRoutes, { audit });
    await api.register(logRoutes, { relay: hub.logs, services: hub.services, agents: hub.gateway, metrics });
    await api.register(eventRoutes, { streams: hub.eventStreams });
    // Behind a token like the rest: node names and counts are the fleet's business.
    api.get('/metrics', routeSchema({ summary: 'Prometheus metrics', tags: ['hub'] }), async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  });
  // preClose: agent sockets are upgraded connections the HTTP server would otherwise wait for.
  app.addHook('preClose', async () => hub.close());
  // After the last request has been answered, so that its record is written too.
  app.addHook('onClose', async () => audit.close());
  if (opts.firstPassOnListen) {
    hub.start({ loop: false });
    app.addHook('onListen', async () => hub.startLoop());
  } else {
    hub.start();
  }
  return { app, hub };
}
