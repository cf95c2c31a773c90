import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { NodeLabelsSchema, NodeNameSchema } from '../../shared/protocol.js';
import { Validator } from '../../shared/validation.js';
import { NodeNameTakenError, NothingRequestedError, TokenLabelError } from '../node-directory.js';
import type { NodeSchedulingState } from '../node-scheduling.js';
import type { Nodes } from '../nodes.js';
import { ApiError, invalid } from './errors.js';
import { routeSchema } from './route-schema.js';
import { answerStaleRevisions, ifMatchOf, withEtag } from './if-match.js';
import { continueToken, listQuerySchema, parseListQuery, type ListQueryString } from './list-query.js';
import { nodeRevisionOf } from '../node-revision.js';
import type { NodeState } from '../failure-detector.js';

export const NodeChangeSchema = Type.Object(
  {
    name: Type.Optional(NodeNameSchema),
    labels: Type.Optional(NodeLabelsSchema),
    /** Takes the name and labels the device asked for (shown as `requested` in the node view). */
    acceptRequested: Type.Optional(Type.Boolean({ description: 'take the name and labels the device asked for (`requested` in the node view)' })),
  },
  { additionalProperties: false, minProperties: 1 },
);
const NodeChangeRequest = new Validator(NodeChangeSchema);

/** Cordon, drain and uncordon take no parameters: an empty object, or no body at all. */
export const NoParametersSchema = Type.Object({}, { additionalProperties: false });
const NoParameters = new Validator(NoParametersSchema);

const NodeParams = Type.Object({ id: Type.String({ description: "the node's id" }) });
const nodeDoc = (summary: string, more: { body?: typeof NodeChangeSchema | typeof NoParametersSchema; bodyOptional?: boolean } = {}) =>
  routeSchema({ summary, tags: ['nodes'], params: NodeParams, ...more });

/** Each route and the state it puts the node in. */
const SCHEDULING_ROUTES: ReadonlyArray<[string, NodeSchedulingState]> = [
  ['cordon', 'cordoned'],
  ['drain', 'draining'],
  ['uncordon', 'active'],
];

/** What `?state=` takes: each of the detector's states (the compiler checks that none is missing). */
const NODE_STATES = Object.keys({ ready: true, not_ready: true, unreachable: true, lost: true } satisfies Record<NodeState, true>) as NodeState[];

const SCHEDULING_SUMMARIES: Record<string, string> = {
  cordon: 'Cordon a node: no new replicas; those it runs stay',
  drain: 'Drain a node: its replicas move elsewhere, then it takes none',
  uncordon: 'Uncordon a node: it takes replicas again',
};

const NodeListQuery = listQuerySchema('nodes', NODE_STATES);

const notFound = (id: string) => new ApiError(404, 'node_not_found', `no node with id "${id}"`);

export async function nodeRoutes(app: FastifyInstance, { nodes }: { nodes: Nodes }): Promise<void> {
  answerStaleRevisions(app);
  // A page at a time, by id: `continue` is where the next page starts (see hub/sorted-keys.ts).
  app.get<{ Querystring: ListQueryString }>('/v1/nodes', routeSchema({ summary: 'List the nodes, a page at a time', tags: ['nodes'], querystring: NodeListQuery }), async (request) => {
    const query = parseListQuery(request.query, 'nodes', NODE_STATES);
    const page = nodes.page(query);
    const next = continueToken('nodes', page.lastKey);
    return { nodes: page.items, ...(next === undefined ? {} : { continue: next }) };
  });

  app.get<{ Params: { id: string } }>('/v1/nodes/:id', nodeDoc('A node'), async (request, reply) => {
    const node = nodes.get(request.params.id);
    if (!node) throw notFound(request.params.id);
    withEtag(reply, nodeRevisionOf(node));
    return nodes.view(node);
  });

  // A node's name and labels are the operator's: the device only asks (see the node's `requested`).
  app.patch<{ Params: { id: string } }>('/v1/nodes/:id', nodeDoc("Set a node's name or labels", { body: NodeChangeSchema }), async (request) => {
    const ifRevision = ifMatchOf(request);
    const checked = NodeChangeRequest.validate(request.body);
    if (!checked.ok) throw invalid('invalid_request', checked.errors);
    const { acceptRequested, name, labels } = checked.value;
    if (acceptRequested && (name !== undefined || labels !== undefined)) {
      throw invalid('invalid_request', [{ path: 'acceptRequested', message: 'cannot be combined with name or labels' }]);
    }
    try {
      const change = { ...(name === undefined ? {} : { name }), ...(labels === undefined ? {} : { labels }), acceptRequested: acceptRequested === true };
      const node = await nodes.update(request.params.id, change, ifRevision);
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
  app.delete<{ Params: { id: string } }>('/v1/nodes/:id', nodeDoc('Remove a node for good: its credential is refused, its replicas placed anew'), async (request) => {
    const removed = await nodes.remove(request.params.id);
    if (!removed) throw notFound(request.params.id);
    return {
      removed: removed.node,
      replicas: removed.replicas,
      message: `node removed: its credential is refused from now on; ${removed.replicas.length} replica(s) it held are placed anew by their services' rules`,
    };
  });

  // A fresh credential for a connected node, over its connection; answered once the store holds it.
  app.post<{ Params: { id: string } }>('/v1/nodes/:id/rotate-credential', nodeDoc('Give a connected node a new credential', { body: NoParametersSchema, bodyOptional: true }), async (request) => {
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
    app.post<{ Params: { id: string } }>(`/v1/nodes/:id/${action}`, nodeDoc(SCHEDULING_SUMMARIES[action]!, { body: NoParametersSchema, bodyOptional: true }), async (request) => {
      const ifRevision = ifMatchOf(request);
      if (request.body !== undefined && request.body !== null) {
        const checked = NoParameters.validate(request.body);
        if (!checked.ok) throw invalid('invalid_request', checked.errors);
      }
      const node = await nodes.setScheduling(request.params.id, state, ifRevision);
      if (!node) throw notFound(request.params.id);
      return nodes.view(node);
    });
  }
}
