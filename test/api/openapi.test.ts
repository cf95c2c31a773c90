import Fastify from 'fastify';
import Type, { type TSchema } from 'typebox';
import { describe, expect, it } from 'vitest';
import { ROUTE_RULES, ruleOf } from '../../hub/auth/route-rules.js';
import { registerErrorHandling } from '../../hub/http/errors.js';
import { DOCS_PREFIX, OPENAPI_PATH } from '../../hub/http/openapi.js';
import { routeSchema } from '../../hub/http/route-schema.js';
import { ServiceSpecSchema } from '../../hub/spec/service-spec.js';
import { Validator } from '../../shared/validation.js';
import { apiHubPerTest } from '../helpers/api-hub.js';

/**
 * The API reference: an OpenAPI 3 document of every route, from the schemas that check them, and
 * the page that browses it, served by the hub itself.
 */

const TOKEN = 'tat_openapi-test-admin';
const hub = apiHubPerTest('tether-openapi-', TOKEN);

type Operation = { summary?: string; description?: string; security?: unknown[]; parameters?: Array<{ in: string; name: string; required?: boolean }>; requestBody?: { required?: boolean; content: Record<string, { schema: unknown }> }; responses: Record<string, { description?: string }> };
type Document = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string }>; schemas?: Record<string, unknown> };
  security: Array<Record<string, string[]>>;
};

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** The fields OpenAPI 3.1 allows (besides `x-` extensions) where it allows no others. */
const DOCUMENT_FIELDS = ['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags', 'externalDocs'];
const OPERATION_FIELDS = ['tags', 'summary', 'description', 'externalDocs', 'operationId', 'parameters', 'requestBody', 'responses', 'callbacks', 'deprecated', 'security', 'servers'];
const COMPONENT_FIELDS = ['schemas', 'responses', 'parameters', 'examples', 'requestBodies', 'headers', 'securitySchemes', 'links', 'callbacks', 'pathItems'];
const unknownFields = (value: object, allowed: string[]) => Object.keys(value).filter((k) => !allowed.includes(k) && !k.startsWith('x-'));

async function documentOf(): Promise<Document> {
  // Open: no token, as a client reads it before it has one.
  const res = await hub.app.inject({ method: 'GET', url: OPENAPI_PATH });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.json() as Document;
}

/** `/v1/nodes/:id` and `/v1/nodes/{nodeId}` alike: parameter names do not matter (route-rules.ts). */
const pathShape = (url: string) => url.replace(/:[^/]+/g, '{}').replace(/\{[^}]+\}/g, '{}');

/** The reference's own page and its files: served, not documented. */
const isDocsPage = (url: string) => url === DOCS_PREFIX || url.startsWith(`${DOCS_PREFIX}/`);

/** Every `$ref` in a value. */
function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => refsIn(v, out));
  else if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
}

describe('the OpenAPI document', () => {
  it('has the structure of OpenAPI 3: version, info, paths with responses, bearer security, components for every $ref', async () => {
    const doc = await documentOf();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.components.securitySchemes.bearer).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    expect(doc.security).toEqual([{ bearer: [] }]);
    const problems: string[] = [];
    for (const field of unknownFields(doc, DOCUMENT_FIELDS)) problems.push(`document: unknown field ${field}`);
    for (const field of unknownFields(doc.components, COMPONENT_FIELDS)) problems.push(`components: unknown field ${field}`);
    for (const [url, item] of Object.entries(doc.paths)) {
      if (!url.startsWith('/')) problems.push(`${url}: a path must start with /`);
      const templated = [...url.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      for (const [method, op] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${url}`;
        if (!HTTP_METHODS.includes(method)) problems.push(`${where}: not an HTTP method`);
        for (const field of unknownFields(op, OPERATION_FIELDS)) problems.push(`${where}: unknown field ${field}`);
        if (!op.responses || Object.keys(op.responses).length === 0) problems.push(`${where}: no responses`);
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status)) problems.push(`${where}: response key ${status}`);
          if (typeof response.description !== 'string') problems.push(`${where}: response ${status} has no description`);
        }
        // Each templated parameter is declared, in the path, required (OpenAPI requires both).
        for (const name of templated) {
          const declared = op.parameters?.find((p) => p.in === 'path' && p.name === name);
          if (!declared || declared.required !== true) problems.push(`${where}: path parameter ${name} not declared as required`);
        }
        for (const p of op.parameters ?? []) {
          if (!['query', 'header', 'path', 'cookie'].includes(p.in) || typeof p.name !== 'string') problems.push(`${where}: parameter ${JSON.stringify(p)}`);
        }
        if (op.requestBody && !op.requestBody.content['application/json']) problems.push(`${where}: a body that is not JSON`);
        for (const scheme of (op.security ?? []).flatMap((s) => Object.keys(s as object))) {
          if (!doc.components.securitySchemes[scheme]) problems.push(`${where}: unknown security scheme ${scheme}`);
        }
      }
    }
    for (const ref of refsIn(doc)) {
      const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
      if (name === undefined || !doc.components.schemas?.[name]) problems.push(`$ref ${ref} does not resolve`);
    }
    expect(problems).toEqual([]);
  });

  it('documents every route of the access table, with its role', async () => {
    const doc = await documentOf();
    const documented = new Map<string, Operation>();
    for (const [url, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) documented.set(`${method.toUpperCase()} ${pathShape(url)}`, op);
    }
    const missing: string[] = [];
    const wrongRole: string[] = [];
    for (const [route, rule] of Object.entries(ROUTE_RULES)) {
      const [method, url] = route.split(' ') as [string, string];
      if (isDocsPage(url)) continue;
      const op = documented.get(`${method} ${pathShape(url)}`);
      if (!op) {
        missing.push(route);
        continue;
      }
      const says = rule === 'open' ? /Open: no API token/ : new RegExp(`Role: \\*\\*${rule}\\*\\*`);
      if (!says.test(op.description ?? '')) wrongRole.push(`${route}: rule ${rule}, description "${op.description}"`);
      if ((rule === 'open') !== (Array.isArray(op.security) && op.security.length === 0)) wrongRole.push(`${route}: rule ${rule}, security ${JSON.stringify(op.security)}`);
    }
    expect(
      missing,
      `route-rules.ts has these routes, /openapi.json does not: is each registered in buildHub (hub/app.ts), after registerApiReference, and not hidden (schema.hide)?`,
    ).toEqual([]);
    expect(wrongRole).toEqual([]);
  });

  it('documents no route the access table lacks', async () => {
    const doc = await documentOf();
    const stray = Object.entries(doc.paths).flatMap(([url, item]) =>
      Object.keys(item)
        .map((method) => `${method.toUpperCase()} ${url.replace(/\{([^}]+)\}/g, ':$1')}`)
        .filter((route) => {
          const [method, path] = route.split(' ') as [string, string];
          return ruleOf(method, path) === undefined;
        }),
    );
    expect(stray).toEqual([]);
  });

  it('shows the schema that checks a request: the spec a PUT takes is the one that refuses a bad spec', async () => {
    const doc = await documentOf();
    const documented = doc.paths['/v1/services/{name}']!.put!.requestBody!.content['application/json']!.schema as TSchema;
    // The document says it in OpenAPI's words (`enum: [x]` for `const: x`...): the same schema if it
    // takes and refuses the same specs as the one the route checks with.
    const asDocumented = new Validator(documented);
    const asChecked = new Validator(ServiceSpecSchema);
    const specs: unknown[] = [
      { image: 'busybox:1', replicas: 2, env: { A_B: 'x' }, ports: [{ containerPort: 80, hostPort: 8080 }] },
      { image: 'busybox:1', colour: 'red' },
      { image: 'busybox:1', env: { 'not a name': 'x' } },
      { image: 'busybox:1', env: { A: 'x'.repeat(5000) } },
      { image: 'busybox:1', healthcheck: { type: 'bogus' } },
      { image: 'busybox:1', replicas: -1 },
      { replicas: 1 },
      'not a spec',
    ];
    expect(specs.map((spec) => asDocumented.check(spec))).toEqual(specs.map((spec) => asChecked.check(spec)));
    expect(specs.map((spec) => asChecked.check(spec))).toEqual([true, false, false, false, false, false, false, false]);
    // A field the schema has no room for, refused by it, in the hub's error shape.
    const res = await hub.call('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 1, colour: 'red' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'invalid_spec', details: [{ path: 'colour', message: 'unknown field' }] });
  });

  it('marks a body that may be left out as not required', async () => {
    const doc = await documentOf();
    expect(doc.paths['/v1/nodes/{id}/cordon']!.post!.requestBody!.required).toBe(false);
    expect(doc.paths['/v1/services/{name}/scale']!.post!.requestBody!.required).toBe(true);
  });
});

describe('a route schema', () => {
  const Thing = Type.Object({ size: Type.Integer({ minimum: 1 }), label: Type.Optional(Type.String({ maxLength: 4 })) }, { additionalProperties: false });

  async function appWith(options: Parameters<typeof routeSchema>[0]) {
    const app = Fastify();
    registerErrorHandling(app);
    app.post('/things', routeSchema(options), async (request) => ({ got: request.body ?? 'nothing' }));
    await app.ready();
    return app;
  }

  it('checks the body with our Validator and refuses with our 400: the route code, the fields named', async () => {
    const app = await appWith({ summary: 'a thing', tags: ['things'], body: Thing, invalidCode: 'invalid_thing' });
    const bad = await app.inject({ method: 'POST', url: '/things', payload: { size: 0, label: 'too long', extra: 1 } });
    expect(bad.statusCode).toBe(400);
    const { error } = bad.json();
    expect(error.code).toBe('invalid_thing');
    expect(error.details).toEqual(expect.arrayContaining([{ path: 'extra', message: 'unknown field' }, expect.objectContaining({ path: 'size' }), expect.objectContaining({ path: 'label' })]));
    expect(error.message).toMatch(/size: /);
    const missing = await app.inject({ method: 'POST', url: '/things' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.code).toBe('invalid_thing');
    const good = await app.inject({ method: 'POST', url: '/things', payload: { size: 2 } });
    expect(good.json()).toEqual({ got: { size: 2 } });
    await app.close();
  });

  it('takes an optional body left out, and still checks one that is given', async () => {
    const Empty = Type.Object({}, { additionalProperties: false });
    const app = await appWith({ summary: 'a thing', tags: ['things'], body: Empty, bodyOptional: true });
    const none = await app.inject({ method: 'POST', url: '/things' });
    expect(none.statusCode, none.body).toBe(200);
    // The handler sees the request as it came: no body is no body.
    expect(none.json()).toEqual({ got: 'nothing' });
    const bad = await app.inject({ method: 'POST', url: '/things', payload: { force: true } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'invalid_request', details: [{ path: 'force', message: 'unknown field' }] });
    await app.close();
  });

  it('refuses a query its schema refuses with invalid_query', async () => {
    const app = Fastify();
    registerErrorHandling(app);
    const Query = Type.Object({ limit: Type.Optional(Type.String({ pattern: '^\\d+$' })) });
    app.get('/things', routeSchema({ summary: 'things', tags: ['things'], querystring: Query }), async () => ({ ok: true }));
    const res = await app.inject({ method: 'GET', url: '/things?limit=many' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'invalid_query', details: [expect.objectContaining({ path: 'limit' })] });
    expect((await app.inject({ method: 'GET', url: '/things?limit=5' })).statusCode).toBe(200);
    // Given twice, a parameter arrives as an array: the error says what is wrong with the URL.
    const twice = await app.inject({ method: 'GET', url: '/things?limit=5&limit=6' });
    expect(twice.json().error).toMatchObject({ code: 'invalid_query', details: [{ path: 'limit', message: 'given more than once' }] });
    await app.close();
  });
});

describe('the /docs page', () => {
  it('answers HTML whose scripts and styles the hub serves itself: nothing from a CDN', async () => {
    const page = await hub.app.inject({ method: 'GET', url: `${DOCS_PREFIX}/` });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    // Offline: no absolute URL anywhere in the page.
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(4);
    for (const asset of assets) {
      const url = new URL(asset, `http://hub${DOCS_PREFIX}/`).pathname;
      const res = await hub.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.body.length, url).toBeGreaterThan(0);
    }
    // The page loads the document from the hub, and asks no outside validator about it.
    const init = await hub.app.inject({ method: 'GET', url: `${DOCS_PREFIX}/static/swagger-initializer.js` });
    expect(init.body).toMatch(/validatorUrl: null/);
    expect(init.body).toMatch(/resolveUrl\('\.\/json'\)/);
    const json = await hub.app.inject({ method: 'GET', url: `${DOCS_PREFIX}/json` });
    expect(json.statusCode).toBe(200);
    expect(json.json().openapi).toMatch(/^3\./);
  });

  it('answers without a token, as /openapi.json does', async () => {
    for (const url of [DOCS_PREFIX, OPENAPI_PATH, `${DOCS_PREFIX}/static/swagger-ui.css`]) {
      const res = await hub.app.inject({ method: 'GET', url });
      expect([200, 302], url).toContain(res.statusCode);
    }
  });
});
