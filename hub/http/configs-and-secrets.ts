import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Validator, type FieldError } from '../../shared/validation.js';
import { MAX_VALUE_BYTES, validateValueName, type NamedValues, type ValueKind } from '../secrets/named-values.js';
import { ApiError, invalid } from './errors.js';
import { routeSchema } from './route-schema.js';

/** `PUT /v1/configs/:name` and `/v1/secrets/:name`: the value as text or as base64 bytes, exactly one. */
export const ValueBodySchema = Type.Object(
  {
    value: Type.Optional(Type.String({ description: 'the value as UTF-8 text' })),
    valueBase64: Type.Optional(Type.String({ description: 'the value as base64 bytes (standard alphabet, padded)' })),
  },
  { additionalProperties: false },
);
const valueBody = new Validator(ValueBodySchema);

const ValueParams = Type.Object({ name: Type.String({ description: '1-63 lower-case letters, digits, ".", "_" or "-"' }) });

/** Standard base64 with its padding: what Buffer writes, and nothing Buffer would quietly skip. */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The value's bytes, or the fields at fault. Messages name the field and the reason, never any of
 * the value (a secret's bad request must not echo it back, nor into a log).
 */
export function decodeValueBody(body: unknown): { ok: true; bytes: Buffer } | { ok: false; errors: FieldError[] } {
  const checked = valueBody.validate(body);
  if (!checked.ok) return checked;
  const { value, valueBase64 } = checked.value;
  if (value !== undefined && valueBase64 !== undefined) return { ok: false, errors: [{ path: 'valueBase64', message: 'give value or valueBase64, not both' }] };
  if (value === undefined && valueBase64 === undefined) return { ok: false, errors: [{ path: 'value', message: 'value or valueBase64 is required' }] };
  const field = value !== undefined ? 'value' : 'valueBase64';
  if (valueBase64 !== undefined && !BASE64_RE.test(valueBase64)) {
    return { ok: false, errors: [{ path: field, message: 'is not base64 (the standard alphabet, with its "=" padding)' }] };
  }
  const bytes = value !== undefined ? Buffer.from(value, 'utf8') : Buffer.from(valueBase64!, 'base64');
  if (bytes.length > MAX_VALUE_BYTES) return { ok: false, errors: [{ path: field, message: `must be at most ${MAX_VALUE_BYTES} bytes (512 KiB), got ${bytes.length}` }] };
  return { ok: true, bytes };
}

/**
 * The routes of configs or of secrets (`/v1/configs`, `/v1/secrets`): the same but for what a
 * GET shows (a config's value; never a secret's).
 */
export async function namedValueRoutes<K extends ValueKind>(app: FastifyInstance, { values }: { values: NamedValues<K> }): Promise<void> {
  const kind = values.kind;
  const base = `/v1/${kind}s`;
  const notFound = (name: string) => new ApiError(404, `${kind}_not_found`, `no ${kind} named "${name}"`);
  const find = (name: string) => {
    const record = values.get(name);
    if (!record) throw notFound(name);
    return record;
  };

  const tags = [`${kind}s`];
  app.get(base, routeSchema({ summary: `List the ${kind}s`, tags }), async () => ({ [`${kind}s`]: values.list().map((r) => values.view(r)) }));

  const shown = kind === 'secret' ? 'without its value' : 'with its value';
  app.get<{ Params: { name: string } }>(`${base}/:name`, routeSchema({ summary: `A ${kind}, ${shown}`, tags, params: ValueParams }), async (request) => values.view(find(request.params.name), true));

  const putSchema = routeSchema({ summary: `Create a ${kind}, or give it a new version`, tags, params: ValueParams, body: ValueBodySchema, invalidCode: `invalid_${kind}` });
  app.put<{ Params: { name: string } }>(`${base}/:name`, putSchema, async (request, reply) => {
    const nameError = validateValueName(request.params.name);
    if (nameError) throw invalid(`invalid_${kind}_name`, [nameError]);
    const decoded = decodeValueBody(request.body);
    if (!decoded.ok) throw invalid(`invalid_${kind}`, decoded.errors);
    const result = await values.put(request.params.name, decoded.bytes);
    // Over a limit is 409, not 400: the same request succeeds once others are deleted.
    if (result.outcome === 'refused') throw new ApiError(409, result.code, result.message);
    return reply.status(result.outcome === 'created' ? 201 : 200).send({ ...values.view(result.record), outcome: result.outcome });
  });

  // In use is 409, not 400: the request is sound, what the services name refuses it.
  app.delete<{ Params: { name: string } }>(`${base}/:name`, routeSchema({ summary: `Delete a ${kind} no service uses`, tags, params: ValueParams }), async (request) => {
    const { name } = request.params;
    const result = await values.delete(name);
    if (result.kind === 'missing') throw notFound(name);
    if (result.kind === 'in_use') {
      throw new ApiError(409, `${kind}_in_use`, `the ${kind} "${name}" is used by ${result.services.map((s) => `"${s}"`).join(', ')}: remove it from their specs first`);
    }
    return { name, deleted: true };
  });
}
