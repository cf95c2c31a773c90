import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { NodeLabelsSchema, NodeNameSchema } from '../../shared/protocol.js';
import { Validator } from '../../shared/validation.js';
import { holdFailedAuthentication } from '../auth/access-control.js';
import type { AuthFailures } from '../auth/auth-failures.js';
import { installCommand } from '../install-command.js';
import { JoinTokenRefusedError, TooManyJoinTokensError } from '../join-tokens.js';
import { NodeNameTakenError } from '../node-directory.js';
import type { Nodes } from '../nodes.js';
import { formatDuration, parseDuration } from '../spec/duration.js';
import { certificateKeyPin } from '../tls/server-key-pin.js';
import { requireAdmin } from './admin-auth.js';
import { ApiError, invalid } from './errors.js';
import { routeSchema } from './route-schema.js';

const DAY_S = 24 * 60 * 60;
const MIN_TTL_MS = 60_000;
const MAX_TTL_MS = 365 * DAY_S * 1000;
/** Far more devices than one install provisions at once; a bound all the same, as on every number. */
const MAX_USES = 100_000;

export const JoinTokenRequestSchema = Type.Object(
  {
    /** How long the token joins, as a duration ("24h", "90m"); or ttlSeconds, as before. */
    ttl: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: MIN_TTL_MS / 1000, maximum: MAX_TTL_MS / 1000 })),
    /** How many nodes may join with it; any number until it expires without. */
    uses: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_USES })),
    /** Given to every node that joins with the token, over labels of the same key the device asks for. */
    labels: Type.Optional(NodeLabelsSchema),
  },
  { additionalProperties: false },
);
const JoinTokenRequest = new Validator(JoinTokenRequestSchema);

/** The token's lifetime from a request: `ttl` or `ttlSeconds`, 24 hours without either. */
function ttlMsOf(body: { ttl?: string; ttlSeconds?: number }): number {
  const refuse = (message: string) => invalid('invalid_request', [{ path: 'ttl', message }]);
  if (body.ttl !== undefined && body.ttlSeconds !== undefined) throw refuse('give one of ttl and ttlSeconds, not both');
  if (body.ttlSeconds !== undefined) return body.ttlSeconds * 1000;
  if (body.ttl === undefined) return DAY_S * 1000;
  const parsed = parseDuration(body.ttl);
  if (!parsed.ok) throw refuse(parsed.error);
  if (parsed.ms < MIN_TTL_MS) throw refuse(`must be at least ${formatDuration(MIN_TTL_MS)}`);
  if (parsed.ms > MAX_TTL_MS) throw refuse(`must be at most ${formatDuration(MAX_TTL_MS)}`);
  return parsed.ms;
}

/**
 * The key pin of the certificate this request came in over: the one the device will see, even
 * after a certificate reload; `fallback` (the key at start) when the request has no TLS socket.
 */
function presentedKeyPin(request: FastifyRequest, fallback: string | undefined): string | undefined {
  const socket = request.raw.socket as Partial<TLSSocket>;
  const presented = socket.encrypted ? socket.getCertificate?.() : null;
  const der = presented && 'raw' in presented ? (presented.raw as Buffer | undefined) : undefined;
  return der ? certificateKeyPin(der) : fallback;
}

/** The device side of joining; the labels and name rules match the agent's hello. */
export const JoinRequestSchema = Type.Object(
  {
    joinToken: Type.String({ minLength: 1, maxLength: 256 }),
    name: NodeNameSchema,
    labels: Type.Optional(NodeLabelsSchema),
  },
  { additionalProperties: false },
);
const JoinRequest = new Validator(JoinRequestSchema);

const JoinTokenParams = Type.Object({ id: Type.String({ description: "the join token's id (not its secret)" }) });

/** Join tokens (admin: create, list, revoke) and the join call itself (authenticated by the join token). */
export async function joinRoutes(
  app: FastifyInstance,
  {
    nodes,
    adminToken,
    authFailures,
    caFingerprint,
    serverKeyPin,
  }: {
    nodes: Nodes;
    adminToken: string;
    /** Refused join tokens count against their address. */ authFailures?: AuthFailures;
    /** The CA agents pin at join (`sha256:<hex>`), given with each join token; absent over plain HTTP. */
    caFingerprint?: string;
    /** curl's pin of the hub's server key (tls/server-key-pin.ts), with caFingerprint. */
    serverKeyPin?: string;
  },
): Promise<void> {
  await app.register(async (admin) => {
    requireAdmin(admin, adminToken);
    admin.post('/v1/join-tokens', routeSchema({ summary: 'Make a join token, and the command that joins a device with it', tags: ['tokens'], body: JoinTokenRequestSchema, bodyOptional: true }), async (request, reply) => {
      const checked = JoinTokenRequest.validate(request.body ?? {});
      if (!checked.ok) throw invalid('invalid_request', checked.errors);
      const { uses, labels = {} } = checked.value;
      try {
        const issued = await nodes.joinTokens.create({ ttlMs: ttlMsOf(checked.value), labels, ...(uses !== undefined ? { uses } : {}) });
        // The hub as this request reached it: the address the operator uses is the likeliest one a device reaches too.
        const hubUrl = `${request.protocol}://${request.host}`;
        const pin = caFingerprint === undefined ? undefined : presentedKeyPin(request, serverKeyPin);
        const command = installCommand({ hubUrl, joinToken: issued.token, caFingerprint: caFingerprint ?? null, serverKeyPin: pin ?? null });
        return reply.status(201).send({ ...issued, ...(caFingerprint === undefined ? {} : { caFingerprint }), installCommand: command });
      } catch (error) {
        if (error instanceof TooManyJoinTokensError) throw new ApiError(409, error.code, error.message);
        throw error;
      }
    });

    admin.get('/v1/join-tokens', routeSchema({ summary: 'List the join tokens, without their secrets', tags: ['tokens'] }), async () => ({ joinTokens: await nodes.joinTokens.list() }));

    admin.delete<{ Params: { id: string } }>('/v1/join-tokens/:id', routeSchema({ summary: 'Revoke a join token', tags: ['tokens'], params: JoinTokenParams }), async (request) => {
      const revoked = await nodes.joinTokens.revoke(request.params.id);
      if (!revoked) throw new ApiError(404, 'join_token_not_found', `no join token with id "${request.params.id}" (GET /v1/join-tokens lists them)`);
      return revoked;
    });
  });

  app.post('/v1/join', routeSchema({ summary: "A device joins (the agent's call, with the join token in the body)", tags: ['nodes'], body: JoinRequestSchema }), async (request, reply) => {
    const checked = JoinRequest.validate(request.body);
    if (!checked.ok) throw invalid('invalid_request', checked.errors);
    try {
      return reply.status(201).send(await nodes.join(checked.value.joinToken, checked.value.name, checked.value.labels ?? {}));
    } catch (error) {
      if (error instanceof JoinTokenRefusedError) {
        if (authFailures) await holdFailedAuthentication(authFailures, request, reply, 'join_token');
        throw new ApiError(401, error.code, error.message, [{ path: 'joinToken', message: error.reason }]);
      }
      if (error instanceof NodeNameTakenError) {
        throw new ApiError(409, error.code, `${error.message} (--name on the agent)`, [{ path: 'name', message: 'is taken by another node' }]);
      }
      throw error;
    }
  });
}
