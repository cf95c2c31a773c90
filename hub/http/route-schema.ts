import type { FastifySchema, FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Validator, type FieldError } from '../../shared/validation.js';
import { invalid } from './errors.js';

/**
 * What a route declares about itself: the schemas that check its request (the same typebox
 * schemas the API reference shows, hub/http/openapi.ts) and the words the reference shows.
 */
export interface RouteDoc {
  summary: string;
  /** More than the summary says, when there is more to say; the role is added from route-rules.ts. */
  description?: string;
  tags: string[];
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  /** The code of the 400 for a body its schema refuses (`invalid_spec`, `invalid_scale`); default `invalid_request`. */
  invalidCode?: string;
  /** A body that may be left out, checked as `{}` then (cordon, drain, rollback: no parameters needed). */
  bodyOptional?: boolean;
}

/** The codes of the 400s for a query or path parameter a schema refuses: the ones handlers use. */
const QUERY_CODE = 'invalid_query';
const PARAMS_CODE = 'invalid_request';
const DEFAULT_BODY_CODE = 'invalid_request';

/** The operation's marker of an optional body, read (and removed) by the API reference. */
export const OPTIONAL_BODY_KEY = 'x-tether-body-optional';

/** One compiled Validator per schema object, whichever routes share it. */
const validators = new WeakMap<TSchema, Validator<TSchema>>();

function validatorOf(schema: TSchema): Validator<TSchema> {
  let validator = validators.get(schema);
  if (!validator) {
    validator = new Validator(schema);
    validators.set(schema, validator);
  }
  return validator;
}

/**
 * A query's errors, where a parameter given twice (which arrives as an array) is said to be so,
 * rather than "must be string": the URL, not the value, is what is wrong.
 */
function repeatedParameters(query: unknown, validator: Validator<TSchema>): FieldError[] {
  const given = (query ?? {}) as Record<string, unknown>;
  return validator.errors(query).map((e) => (Array.isArray(given[e.path]) ? { path: e.path, message: 'given more than once' } : e));
}

/**
 * A validator compiler for fastify that checks with our Validator and refuses with our 400 (the
 * error shape of hub/http/errors.ts: a code, a message naming the fields, the fields), so that a
 * schema declared on a route is the one that checks it. fastify passes a missing body as null.
 */
export function requestValidatorCompiler({ bodyCode = DEFAULT_BODY_CODE, bodyOptional = false }: { bodyCode?: string; bodyOptional?: boolean } = {}): FastifySchemaCompiler<TSchema> {
  return ({ schema, httpPart }) => {
    const validator = validatorOf(schema);
    const code = httpPart === 'body' ? bodyCode : httpPart === 'querystring' ? QUERY_CODE : PARAMS_CODE;
    const absentAs = httpPart === 'body' && bodyOptional ? {} : undefined;
    return (data: unknown) => {
      const value = data === null || data === undefined ? absentAs : data;
      // true, not { value }: the handler sees the request as it came (a missing body stays undefined).
      if (validator.check(value)) return true;
      return { error: invalid(code, httpPart === 'querystring' ? repeatedParameters(value, validator) : validator.errors(value)) };
    };
  };
}

/**
 * A route's `schema` and the compiler that checks its request with it, to spread into the route's
 * options: `app.post(url, routeSchema({ ... }), handler)`.
 */
export function routeSchema(doc: RouteDoc): { schema: FastifySchema; validatorCompiler: FastifySchemaCompiler<TSchema> } {
  const { summary, description, tags, params, querystring, body, invalidCode, bodyOptional = false } = doc;
  const schema: FastifySchema & Record<string, unknown> = { summary, tags };
  if (description !== undefined) schema.description = description;
  if (params !== undefined) schema.params = params;
  if (querystring !== undefined) schema.querystring = querystring;
  if (body !== undefined) schema.body = body;
  if (body !== undefined && bodyOptional) schema[OPTIONAL_BODY_KEY] = true;
  return { schema, validatorCompiler: requestValidatorCompiler({ ...(invalidCode ? { bodyCode: invalidCode } : {}), bodyOptional }) };
}
