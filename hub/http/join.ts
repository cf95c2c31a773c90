import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { NodeLabelsSchema, NodeNameSchema } from '../../shared/protocol.js';
import { Validator } from '../../shared/validation.js';
import { NodeNameTakenError } from '../node-directory.js';
import type { Nodes } from '../nodes.js';
import { requireAdmin } from './admin-auth.js';
import { ApiError, invalid } from './errors.js';

const DAY_S = 24 * 60 * 60;

const JoinTokenRequest = new Validator(
  Type.Object(
    {
      ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 365 * DAY_S })),
      /** Given to every node that joins with the token, over labels of the same key the device asks for. */
      labels: Type.Optional(NodeLabelsSchema),
    },
    { additionalProperties: false },
  ),
);

/** The device side of joining; the labels and name rules match the agent's hello. */
const JoinRequest = new Validator(
  Type.Object(
    {
      joinToken: Type.String({ minLength: 1, maxLength: 256 }),
      name: NodeNameSchema,
      labels: Type.Optional(NodeLabelsSchema),
    },
    { additionalProperties: false },
  ),
);

/** Join tokens (admin) and the join call itself (authenticated by the join token). */
export async function joinRoutes(app: FastifyInstance, { nodes, adminToken }: { nodes: Nodes; adminToken: string }): Promise<void> {
  await app.register(async (admin) => {
    requireAdmin(admin, adminToken);
    admin.post('/v1/join-tokens', async (request, reply) => {
      const checked = JoinTokenRequest.validate(request.body ?? {});
      if (!checked.ok) throw invalid('invalid_request', checked.errors);
      return reply.status(201).send(await nodes.createJoinToken(checked.value.ttlSeconds ?? DAY_S, checked.value.labels ?? {}));
    });
  });

  app.post('/v1/join', async (request, reply) => {
    const checked = JoinRequest.validate(request.body);
    if (!checked.ok) throw invalid('invalid_request', checked.errors);
    let joined: Awaited<ReturnType<Nodes['join']>>;
    try {
      joined = await nodes.join(checked.value.joinToken, checked.value.name, checked.value.labels ?? {});
    } catch (error) {
      if (error instanceof NodeNameTakenError) {
        throw new ApiError(409, error.code, `${error.message} (--name on the agent)`, [{ path: 'name', message: 'is taken by another node' }]);
      }
      throw error;
    }
    if (!joined) throw new ApiError(401, 'invalid_join_token', 'join token is unknown or expired: ask the hub operator for a new one (POST /v1/join-tokens)');
    return reply.status(201).send(joined);
  });
}
