import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '../shared/clock.js';
import { TETHER_VERSION } from '../shared/version.js';
import { requireAdmin } from './http/admin-auth.js';
import { namedValueRoutes } from './http/configs-and-secrets.js';
import { frameworkErrors, registerErrorHandling } from './http/errors.js';
import { joinRoutes } from './http/join.js';
import { nodeRoutes } from './http/nodes.js';
import { serviceRoutes } from './http/services.js';
import { DEFAULT_HUB_CONFIG, Hub, type HubConfig } from './hub.js';
import { hubMetrics } from './metrics.js';
import { MasterKeyring, type ValueSealer } from './secrets/master-keyring.js';
import type { Store } from './store/store.js';

export interface BuildHubOptions {
  store: Store;
  adminToken: string;
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
  });
  const sealer = opts.sealer ?? new MasterKeyring(randomBytes(32));
  const hub = new Hub(opts.store, { ...DEFAULT_HUB_CONFIG, ...opts.config }, opts.clock ?? systemClock, app.log, sealer);
  hub.gateway.attach(app.server);
  registerErrorHandling(app);

  // 503 while the store cannot write, so that a supervisor or load balancer can act on it.
  app.get('/healthz', async (_request, reply) => {
    const { ok, error, since } = hub.stats.store.health();
    const body = { status: ok ? 'ok' : 'failing', version: TETHER_VERSION, connectedNodes: hub.stats.agents.connectedCount, store: { ok, error, since } };
    return reply.status(ok ? 200 : 503).send(body);
  });
  await app.register(joinRoutes, { nodes: hub.nodes, adminToken: opts.adminToken });
  const metrics = hubMetrics(hub.stats);
  await app.register(async (api) => {
    requireAdmin(api, opts.adminToken);
    await api.register(nodeRoutes, { nodes: hub.nodes });
    await api.register(serviceRoutes, { services: hub.services, specContext: { values: hub.values, allowedHostPaths: hub.config.allowedHostPaths } });
    await api.register(namedValueRoutes<'config'>, { values: hub.configs });
    await api.register(namedValueRoutes<'secret'>, { values: hub.secrets });
    // Behind the admin token like the rest: node names and counts are the operator's business.
    api.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  });
  // preClose: agent sockets are upgraded connections the HTTP server would otherwise wait for.
  app.addHook('preClose', async () => hub.close());
  if (opts.firstPassOnListen) {
    hub.start({ loop: false });
    app.addHook('onListen', async () => hub.startLoop());
  } else {
    hub.start();
  }
  return { app, hub };
}
