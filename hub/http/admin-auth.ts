import type { FastifyInstance } from 'fastify';
import { bearerToken, sameDigest, sha256 } from '../auth/secrets.js';
import { ApiError } from './errors.js';

/** Requires the admin token on every route of the plugin it is registered in. */
export function requireAdmin(app: FastifyInstance, adminToken: string): void {
  const expected = sha256(adminToken);
  app.addHook('onRequest', async (request) => {
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new ApiError(401, 'unauthorized', 'missing "Authorization: Bearer <admin token>" header');
    if (!sameDigest(sha256(token), expected)) throw new ApiError(401, 'unauthorized', 'invalid admin token');
  });
}
