import type { FastifyInstance } from 'fastify';
import { bearerToken, sameDigest, sha256 } from '../auth/secrets.js';
import { ApiError } from './errors.js';

/**
 * Requires an admin on every route of the plugin it is registered in. Behind the hub's access
 * hook (hub/auth/access-control.ts) the request's token is known already, and any admin token
 * passes, an API token of the admin role as well as the first one; a plugin used without that
 * hook takes the first admin token alone, as before roles existed.
 */
export function requireAdmin(app: FastifyInstance, adminToken: string): void {
  const expected = sha256(adminToken);
  app.addHook('onRequest', async (request) => {
    if (request.principal) {
      if (request.principal.role !== 'admin') throw new ApiError(403, 'forbidden', `this route needs the admin role; token "${request.principal.name}" has the ${request.principal.role} role`);
      return;
    }
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new ApiError(401, 'unauthorized', 'missing "Authorization: Bearer <admin token>" header');
    if (!sameDigest(sha256(token), expected)) throw new ApiError(401, 'unauthorized', 'invalid admin token');
  });
}
