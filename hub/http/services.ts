import type { FastifyInstance } from 'fastify';
import { validateServiceName, validateServiceSpec } from '../../shared/spec.js';
import type { Hub } from '../hub.js';
import { ApiError, invalid } from './errors.js';

export async function serviceRoutes(app: FastifyInstance, { hub }: { hub: Hub }): Promise<void> {
  const find = (name: string) => {
    const record = hub.store.getService(name);
    if (!record) throw new ApiError(404, 'service_not_found', `no service named "${name}"`);
    return record;
  };

  app.get('/v1/services', async () => ({
    services: [...hub.store.listServices()].sort((a, b) => a.name.localeCompare(b.name)).map((s) => hub.serviceView(s)),
  }));

  app.get<{ Params: { name: string } }>('/v1/services/:name', async (request) => hub.serviceView(find(request.params.name)));

  app.put<{ Params: { name: string } }>('/v1/services/:name', async (request, reply) => {
    const nameError = validateServiceName(request.params.name);
    if (nameError) throw invalid('invalid_service_name', [nameError]);
    const checked = validateServiceSpec(request.body);
    if (!checked.ok) throw invalid('invalid_spec', checked.errors);
    const { outcome, record } = await hub.putService(request.params.name, checked.value);
    return reply.status(outcome === 'created' ? 201 : 200).send({ ...hub.serviceView(record), outcome });
  });

  app.delete<{ Params: { name: string } }>('/v1/services/:name', async (request) => {
    find(request.params.name);
    await hub.deleteService(request.params.name);
    return { name: request.params.name, deleted: true };
  });
}
