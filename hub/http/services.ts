import type { FastifyInstance } from 'fastify';
import { validateServiceName, validateServiceSpec } from '../spec/service-spec.js';
import type { Services } from '../services.js';
import type { ReplicaPage } from '../views.js';
import { ApiError, invalid } from './errors.js';

/** Replicas listed per service view unless asked otherwise; counts always cover them all. */
export const DEFAULT_REPLICA_LIMIT = 1000;
export const MAX_REPLICA_LIMIT = 10_000;

type PageQuery = { Querystring: { offset?: string; limit?: string } };

function nonNegativeInt(query: Record<string, string | undefined>, field: 'offset' | 'limit', fallback: number, max: number): number {
  const text = query[field];
  if (text === undefined) return fallback;
  const n = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n > max) {
    throw invalid('invalid_query', [{ path: field, message: `must be a whole number from 0 to ${max}, got "${text.slice(0, 40)}"` }]);
  }
  return n;
}

/** `?offset=&limit=` of the replica list; `limit=0` gives the counts alone. */
function replicaPage(query: Record<string, string | undefined>, defaultLimit: number): ReplicaPage {
  return {
    offset: nonNegativeInt(query, 'offset', 0, 999_999_999),
    limit: nonNegativeInt(query, 'limit', defaultLimit, MAX_REPLICA_LIMIT),
  };
}

export async function serviceRoutes(app: FastifyInstance, { services }: { services: Services }): Promise<void> {
  const find = (name: string) => {
    const record = services.get(name);
    if (!record) throw new ApiError(404, 'service_not_found', `no service named "${name}"`);
    return record;
  };

  // The list shows each service's counts; its replicas only when a limit asks for them.
  app.get<PageQuery>('/v1/services', async (request) => {
    const page = replicaPage(request.query, 0);
    return {
      services: services.list().map((s) => services.view(s, page)),
    };
  });

  app.get<PageQuery & { Params: { name: string } }>('/v1/services/:name', async (request) => {
    const page = replicaPage(request.query, DEFAULT_REPLICA_LIMIT);
    return services.view(find(request.params.name), page);
  });

  app.put<{ Params: { name: string } }>('/v1/services/:name', async (request, reply) => {
    const nameError = validateServiceName(request.params.name);
    if (nameError) throw invalid('invalid_service_name', [nameError]);
    const checked = validateServiceSpec(request.body);
    if (!checked.ok) throw invalid('invalid_spec', checked.errors);
    const { outcome, record } = await services.put(request.params.name, checked.value);
    const view = services.view(record, { offset: 0, limit: DEFAULT_REPLICA_LIMIT });
    return reply.status(outcome === 'created' ? 201 : 200).send({ ...view, outcome });
  });

  app.delete<{ Params: { name: string } }>('/v1/services/:name', async (request) => {
    find(request.params.name);
    await services.delete(request.params.name);
    return { name: request.params.name, deleted: true };
  });
}
