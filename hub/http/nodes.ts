import type { FastifyInstance } from 'fastify';
import type { Hub } from '../hub.js';
import { ApiError } from './errors.js';

export async function nodeRoutes(app: FastifyInstance, { hub }: { hub: Hub }): Promise<void> {
  app.get('/v1/nodes', async () => ({ nodes: [...hub.store.listNodes()].map((n) => hub.nodeView(n)) }));

  app.get<{ Params: { id: string } }>('/v1/nodes/:id', async (request) => {
    const node = hub.store.getNode(request.params.id);
    if (!node) throw new ApiError(404, 'node_not_found', `no node with id "${request.params.id}"`);
    return hub.nodeView(node);
  });
}
