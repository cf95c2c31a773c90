import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { NodeLabelsSchema, NodeNameSchema } from '../../shared/protocol.js';
import { Validator } from '../../shared/validation.js';
import { NodeNameTakenError, NothingRequestedError, TokenLabelError } from '../node-directory.js';
import type { NodeSchedulingState } from '../node-scheduling.js';
import type { Nodes } from '../nodes.js';
import { ApiError, invalid } from './errors.js';

const NodeChangeRequest = new Validator(
  Type.Object(
    {
      name: Type.Optional(NodeNameSchema),
      labels: Type.Optional(NodeLabelsSchema),
      /** Takes the name and labels the device asked for (shown as `requested` in the node view). */
      acceptRequested: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false, minProperties: 1 },
  ),
);

/** Cordon, drain and uncordon take no parameters: an empty object, or no body at all. */
const NoParameters = new Validator(Type.Object({}, { additionalProperties: false }));

/** Each route and the state it puts the node in. */
const SCHEDULING_ROUTES: ReadonlyArray<[string, NodeSchedulingState]> = [
  ['cordon', 'cordoned'],
  ['drain', 'draining'],
  ['uncordon', 'active'],
];

const notFound = (id: string) => new ApiError(404, 'node_not_found', `no node with id "${id}"`);

export async function nodeRoutes(app: FastifyInstance, { nodes }: { nodes: Nodes }): Promise<void> {
  app.get('/v1/nodes', async () => ({ nodes: [...nodes.list()].map((n) => nodes.view(n)) }));

  app.get<{ Params: { id: string } }>('/v1/nodes/:id', async (request) => {
    const node = nodes.get(request.params.id);
    if (!node) throw notFound(request.params.id);
    return nodes.view(node);
  });

  // A node's name and labels are the operator's: the device only asks (see the node's `requested`).
  app.patch<{ Params: { id: string } }>('/v1/nodes/:id', async (request) => {
    const checked = NodeChangeRequest.validate(request.body);
    if (!checked.ok) throw invalid('invalid_request', checked.errors);
    const { acceptRequested, name, labels } = checked.value;
    if (acceptRequested && (name !== undefined || labels !== undefined)) {
      throw invalid('invalid_request', [{ path: 'acceptRequested', message: 'cannot be combined with name or labels' }]);
    }
    try {
      const node = await nodes.update(request.params.id, { ...(name === undefined ? {} : { name }), ...(labels === undefined ? {} : { labels }), acceptRequested: acceptRequested === true });
      if (!node) throw notFound(request.params.id);
      return nodes.view(node);
    } catch (error) {
      if (error instanceof NodeNameTakenError) throw new ApiError(409, error.code, error.message, [{ path: 'name', message: error.message }]);
      if (error instanceof NothingRequestedError) throw new ApiError(409, error.code, error.message, [{ path: 'acceptRequested', message: error.message }]);
      if (error instanceof TokenLabelError) throw invalid('invalid_request', [{ path: `labels.${error.key}`, message: error.message }]);
      throw error;
    }
  });

  // Removes the node for good (see Nodes.remove); the answer lists its replicas and what becomes of each.
  app.delete<{ Params: { id: string } }>('/v1/nodes/:id', async (request) => {
    const removed = await nodes.remove(request.params.id);
    if (!removed) throw notFound(request.params.id);
    return {
      removed: removed.node,
      replicas: removed.replicas,
      message: `node removed: its credential is refused from now on; ${removed.replicas.length} replica(s) it held are placed anew by their services' rules`,
    };
  });

  // A fresh credential for a connected node, over its connection; answered once the store holds it.
  app.post<{ Params: { id: string } }>('/v1/nodes/:id/rotate-credential', async (request) => {
    if (request.body !== undefined && request.body !== null) {
      const checked = NoParameters.validate(request.body);
      if (!checked.ok) throw invalid('invalid_request', checked.errors);
    }
    const outcome = await nodes.rotateCredential(request.params.id);
    if (!outcome.ok) throw new ApiError(outcome.status, outcome.code, outcome.message);
    return { nodeId: outcome.nodeId, rotatedAt: outcome.rotatedAt, message: 'credential rotated: the node holds the new one, and the previous one is refused' };
  });

  // An operator's hold on a node (see hub/node-scheduling.ts): a node already in the state asked
  // for answers 200 and nothing changes.
  for (const [action, state] of SCHEDULING_ROUTES) {
    app.post<{ Params: { id: string } }>(`/v1/nodes/:id/${action}`, async (request) => {
      if (request.body !== undefined && request.body !== null) {
        const checked = NoParameters.validate(request.body);
        if (!checked.ok) throw invalid('invalid_request', checked.errors);
      }
      const node = await nodes.setScheduling(request.params.id, state);
      if (!node) throw notFound(request.params.id);
      return nodes.view(node);
    });
  }
}
