import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Validator } from '../../shared/validation.js';
import { ApiTokenNameTakenError, TooManyApiTokensError, validTokenName, type ApiTokens } from '../auth/api-tokens.js';
import { isRole, ROLES } from '../auth/roles.js';
import { parseTokenTtl } from '../auth/token-ttl.js';
import { ApiError, invalid } from './errors.js';
import { routeSchema } from './route-schema.js';

export const ApiTokenRequestSchema = Type.Object(
  {
    role: Type.String({ maxLength: 16 }),
    name: Type.String({ maxLength: 64 }),
    /** "30d", "12h": valid until revoked when absent. */
    ttl: Type.Optional(Type.String({ maxLength: 16 })),
  },
  { additionalProperties: false },
);
const ApiTokenRequest = new Validator(ApiTokenRequestSchema);

const ApiTokenParams = Type.Object({ id: Type.String({ description: "the token's id (not its secret)" }) });

/** Tokens for the roles (admin only, as the route table says): made, listed, revoked. */
export async function apiTokenRoutes(app: FastifyInstance, { tokens }: { tokens: ApiTokens }): Promise<void> {
  app.post('/v1/api-tokens', routeSchema({ summary: 'Make an API token of a role', tags: ['tokens'], body: ApiTokenRequestSchema, bodyOptional: true }), async (request, reply) => {
    const checked = ApiTokenRequest.validate(request.body ?? {});
    if (!checked.ok) throw invalid('invalid_request', checked.errors);
    const { role, name, ttl } = checked.value;
    if (!isRole(role)) throw invalid('invalid_request', [{ path: 'role', message: `must be ${ROLES.join(', ').replace(/, (\w+)$/, ' or $1')}` }]);
    if (!validTokenName(name)) {
      throw invalid('invalid_request', [{ path: 'name', message: 'must be 1 to 64 letters, digits, ".", "_" or "-", starting and ending with a letter or digit' }]);
    }
    let ttlMs: number | null = null;
    if (ttl !== undefined) {
      const parsed = parseTokenTtl(ttl);
      if (!parsed.ok) throw invalid('invalid_request', [{ path: 'ttl', message: parsed.error.replace(/^ttl: /, '') }]);
      ttlMs = parsed.ms;
    }
    try {
      return reply.status(201).send(await tokens.create({ role, name, ttlMs }));
    } catch (error) {
      if (error instanceof ApiTokenNameTakenError) throw new ApiError(409, error.code, error.message, [{ path: 'name', message: error.message }]);
      if (error instanceof TooManyApiTokensError) throw new ApiError(409, error.code, error.message);
      throw error;
    }
  });

  app.get('/v1/api-tokens', routeSchema({ summary: 'List the API tokens, without their secrets', tags: ['tokens'] }), async () => ({ apiTokens: tokens.list() }));

  app.delete<{ Params: { id: string } }>('/v1/api-tokens/:id', routeSchema({ summary: 'Revoke an API token', tags: ['tokens'], params: ApiTokenParams }), async (request) => {
    const revoked = await tokens.revoke(request.params.id);
    if (!revoked) throw new ApiError(404, 'api_token_not_found', `no API token with id "${request.params.id}"`);
    return { ...revoked, revoked: true };
  });
}
