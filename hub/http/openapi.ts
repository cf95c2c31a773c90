import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { TETHER_VERSION } from '../../shared/version.js';
import { ROLES } from '../auth/roles.js';
import { ruleOf } from '../auth/route-rules.js';
import { OPTIONAL_BODY_KEY } from './route-schema.js';

/** The API reference as OpenAPI 3 JSON, and the page that browses it. */
export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PREFIX = '/docs';

/** What every refusal looks like (hub/http/errors.ts). */
const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable, for scripts: `invalid_spec`, `service_not_found`, `forbidden`...' },
        message: { type: 'string', description: 'for people; names the fields at fault' },
        details: {
          type: 'array',
          description: 'the fields at fault, for a 400',
          items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string', description: '`ports[0].hostPort`; empty for the whole body' }, message: { type: 'string' } } },
        },
      },
    },
  },
} as const;

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

const TAGS = [
  { name: 'nodes', description: 'the devices of the fleet: names, labels, cordon and drain, removal' },
  { name: 'services', description: 'what runs on the fleet: specs, rollouts, scale, rollbacks' },
  { name: 'configs', description: 'named values that services mount or take as environment' },
  { name: 'secrets', description: 'like configs, never shown back, sealed at rest' },
  { name: 'tokens', description: 'API tokens of the roles, and join tokens for devices' },
  { name: 'hub', description: 'health, metrics, audit, this reference' },
];

/** Where @fastify/swagger-ui keeps the page's files, found through the module resolver: the bundled hub has no `__dirname` of the package's own. */
function swaggerUiAssetsDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@fastify/swagger-ui')), 'static');
}

/** The words an operation gets from its rule in route-rules.ts. */
function accessText(rule: string | undefined): string {
  if (rule === undefined) return 'No access rule (a bug: see hub/auth/route-rules.ts).';
  if (rule === 'open') return 'Open: no API token.';
  const higher = ROLES.slice(ROLES.indexOf(rule as (typeof ROLES)[number]) + 1);
  return `Role: **${rule}**${higher.length > 0 ? ` (or ${higher.join(', ')})` : ''}.`;
}

type Operation = { description?: string; security?: unknown[]; requestBody?: { required?: boolean }; responses?: Record<string, unknown> } & Record<string, unknown>;

/**
 * Registers the API reference: the OpenAPI document of every route, generated from the schemas
 * that check each route's request (hub/http/route-schema.ts), with each route's role from
 * route-rules.ts, served at /openapi.json; and the Swagger UI page at /docs, served from the
 * hub's own files (no CDN: a hub on a site network may reach nothing else). Register it before
 * the routes: it learns them as they are added.
 */
export async function registerApiReference(app: FastifyInstance): Promise<void> {
  const assetsDir = swaggerUiAssetsDir();
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tether hub API',
        version: TETHER_VERSION,
        description:
          'The hub of a Tether fleet. Every route but the open ones takes an API token (`Authorization: Bearer <token>`) of the role it names: ' +
          'viewer reads, operator runs services and holds nodes, admin does everything (secrets, tokens, node removal, audit). ' +
          'Errors have one shape (`Error`): a stable code, a message naming the fields at fault, and for a 400 the fields.',
      },
      tags: TAGS,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token, or the admin token the hub wrote to its data dir' } },
        schemas: { Error: ERROR_SCHEMA as unknown as Record<string, unknown> },
      },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url, route }) => {
      const method = [route.method].flat()[0] ?? 'GET';
      const rule = ruleOf(method, url);
      const own = (schema ?? {}) as Record<string, unknown>;
      const description = [own.description, accessText(rule)].filter((s) => typeof s === 'string').join('\n\n');
      return { schema: { ...own, description, ...(rule === 'open' ? { security: [] } : {}) }, url };
    },
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject;
      const { openapiObject } = document;
      for (const item of Object.values(openapiObject.paths ?? {})) {
        for (const operation of Object.values(item as Record<string, Operation>)) {
          if (operation[OPTIONAL_BODY_KEY] === true && operation.requestBody) operation.requestBody.required = false;
          delete operation[OPTIONAL_BODY_KEY];
          const responses = (operation.responses ??= {});
          if (operation.security === undefined) {
            responses['401'] ??= errorResponse('no token, or one that is wrong, expired or revoked');
            responses['403'] ??= errorResponse("the token's role is below the route's");
          }
          responses.default ??= errorResponse('an error');
        }
      }
      return openapiObject;
    },
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    baseDir: assetsDir,
    logo: { type: 'image/svg+xml', content: readFileSync(path.join(assetsDir, 'logo.svg')) },
  });
  app.get(OPENAPI_PATH, { schema: { summary: 'This API reference, as OpenAPI 3', tags: ['hub'] } }, async () => app.swagger());
}
