import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Validator } from '../../shared/validation.js';
import { keptRevisions } from '../revisions.js';
import { redactSpec, ServiceSpecSchema, SPEC_LIMITS, validateServiceName, validateServiceSpec } from '../spec/service-spec.js';
import type { Services } from '../services.js';
import type { MountContext } from '../spec/mounts.js';
import type { ReplicaPage } from '../views.js';
import { ApiError, invalid } from './errors.js';
import { routeSchema, type RouteDoc } from './route-schema.js';
import { answerStaleRevisions, ifMatchOf, withEtag } from './if-match.js';
import { continueToken, listQuerySchema, parseListQuery, type ListQueryString } from './list-query.js';
import { SERVICE_STATES } from '../views.js';
import { shownChanges } from '../spec-diff.js';

/** Replicas listed per service view unless asked otherwise; counts always cover them all. */
export const DEFAULT_REPLICA_LIMIT = 1000;
export const MAX_REPLICA_LIMIT = 10_000;

type PageQuery = { Querystring: { offset?: string; limit?: string } };

/** `POST .../rollback`: the body is optional; without `revision`, the one before the current. */
export const RollbackSchema = Type.Object({ revision: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })) }, { additionalProperties: false });
const rollbackBody = new Validator(RollbackSchema);

/** `POST .../scale`: the replica count and nothing else (other changes go through a PUT). */
export const ScaleSchema = Type.Object({ replicas: Type.Integer({ minimum: 0, maximum: SPEC_LIMITS.maxReplicas }) }, { additionalProperties: false });
const scaleBody = new Validator(ScaleSchema);

/** `POST .../replicas/:id/move`: the body is optional; without `toNode`, any other node that can take it. */
export const MoveSchema = Type.Object({ toNode: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) }, { additionalProperties: false });
const moveBody = new Validator(MoveSchema);

const ServiceParams = Type.Object({ name: Type.String({ description: '1-63 lower-case letters, digits or "-"' }) });
const ReplicaParams = Type.Object({ name: ServiceParams.properties.name, id: Type.String({ description: "the replica's id" }) });
/** `?offset=&limit=` of a service's replicas, as strings: the handler reads them and names what is wrong with one. */
const ReplicaPageQuery = Type.Object({
  offset: Type.Optional(Type.String({ description: 'the first replica shown (default 0)' })),
  limit: Type.Optional(Type.String({ description: `replicas shown, 0 to ${MAX_REPLICA_LIMIT} (default ${DEFAULT_REPLICA_LIMIT}); 0: the counts alone` })),
});
const ServiceListQuery = listQuerySchema('services', SERVICE_STATES, {
  replicaOffset: Type.Optional(Type.String({ description: "each service's first replica listed (default 0)" })),
  replicaLimit: Type.Optional(Type.String({ description: `replicas listed per service, 0 to ${MAX_REPLICA_LIMIT} (default 0: the counts alone)` })),
});
const PutQuery = Type.Object({
  dryRun: Type.Optional(Type.String({ description: '"true": check the spec and answer what would change and where new replicas would go, storing nothing' })),
});
const DeleteQuery = Type.Object({ purgeVolumes: Type.Optional(Type.String({ description: '"true": remove its volumes from the nodes too (default "false": kept)' })) });
const serviceDoc = (summary: string, more: Omit<RouteDoc, 'summary' | 'tags'> = {}) => routeSchema({ summary, tags: ['services'], params: ServiceParams, ...more });

function nonNegativeInt(query: Record<string, string | undefined>, field: string, fallback: number, max: number): number {
  const text = query[field];
  if (text === undefined) return fallback;
  const n = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n > max) {
    throw invalid('invalid_query', [{ path: field, message: `must be a whole number from 0 to ${max}, got "${text.slice(0, 40)}"` }]);
  }
  return n;
}

/** `?offset=&limit=` of the replica list; `limit=0` gives the counts alone. */
function replicaPage(query: Record<string, string | undefined>, defaultLimit: number): ReplicaPage {
  return {
    offset: nonNegativeInt(query, 'offset', 0, 999_999_999),
    limit: nonNegativeInt(query, 'limit', defaultLimit, MAX_REPLICA_LIMIT),
  };
}

/**
 * `specContext`: what a spec is checked against besides itself (the configs and secrets that
 * exist, the host paths binds may mount); absent: none exist, none may.
 */
export async function serviceRoutes(app: FastifyInstance, { services, specContext = {} }: { services: Services; specContext?: MountContext }): Promise<void> {
  answerStaleRevisions(app);
  const notFound = (name: string) => new ApiError(404, 'service_not_found', `no service named "${name}"`);
  const find = (name: string) => {
    const record = services.get(name);
    if (!record) throw notFound(name);
    return record;
  };

  // A page of services at a time, by name (`continue`: see hub/sorted-keys.ts), each with its
  // counts; its replicas only when `replicaLimit` asks for them (`limit` is the page's size).
  app.get<{ Querystring: ListQueryString & { replicaOffset?: string; replicaLimit?: string } }>('/v1/services', routeSchema({ summary: 'List the services, a page at a time', tags: ['services'], querystring: ServiceListQuery }), async (request) => {
    const query = parseListQuery(request.query, 'services', SERVICE_STATES);
    const replicas = {
      offset: nonNegativeInt(request.query, 'replicaOffset', 0, 999_999_999),
      limit: nonNegativeInt(request.query, 'replicaLimit', 0, MAX_REPLICA_LIMIT),
    };
    const page = services.page(query, replicas);
    const next = continueToken('services', page.lastKey);
    return { services: page.items, ...(next === undefined ? {} : { continue: next }) };
  });

  app.get<PageQuery & { Params: { name: string } }>('/v1/services/:name', serviceDoc('A service, its replicas a page at a time', { querystring: ReplicaPageQuery }), async (request, reply) => {
    const page = replicaPage(request.query, DEFAULT_REPLICA_LIMIT);
    const record = find(request.params.name);
    withEtag(reply, record.revision);
    return services.view(record, page);
  });

  // `?dryRun=true`: checked as a PUT is, then answered with what it would change and where new
  // replicas would go (see Services.preview); nothing is stored or sent to a node.
  app.put<{ Params: { name: string }; Querystring: { dryRun?: string } }>('/v1/services/:name', serviceDoc('Create or update a service', { body: ServiceSpecSchema, querystring: PutQuery, invalidCode: 'invalid_spec' }), async (request, reply) => {
    const flag = request.query.dryRun;
    if (flag !== undefined && flag !== 'true' && flag !== 'false') {
      throw invalid('invalid_query', [{ path: 'dryRun', message: `must be "true" or "false", got ${JSON.stringify(String(flag).slice(0, 40))}` }]);
    }
    const ifRevision = ifMatchOf(request);
    const nameError = validateServiceName(request.params.name);
    if (nameError) throw invalid('invalid_service_name', [nameError]);
    const checked = validateServiceSpec(request.body, specContext);
    if (!checked.ok) throw invalid('invalid_spec', checked.errors);
    if (flag === 'true') {
      const preview = services.preview(request.params.name, checked.value, ifRevision);
      const { changes, truncated } = shownChanges(preview.before, preview.after);
      return { dryRun: true, outcome: preview.outcome, changes, ...(truncated ? { changesTruncated: true } : {}), placement: preview.placement };
    }
    const { outcome, record } = await services.put(request.params.name, checked.value, ifRevision);
    const view = services.view(record, { offset: 0, limit: DEFAULT_REPLICA_LIMIT });
    return reply.status(outcome === 'created' ? 201 : 200).send({ ...view, outcome });
  });

  app.get<{ Params: { name: string } }>('/v1/services/:name/revisions', serviceDoc('The specs a service kept, to roll back to'), async (request) => {
    const record = find(request.params.name);
    return {
      name: record.name,
      revisions: keptRevisions(record).map((r) => ({ revision: r.revision, acceptedAt: r.acceptedAt, current: r.current, spec: redactSpec(r.spec) })),
    };
  });

  // A rollback that cannot go where asked is 409, not 400: the request is sound, but what the
  // service keeps now refuses it (the same request succeeds on a service that kept that revision).
  app.post<{ Params: { name: string } }>('/v1/services/:name/rollback', serviceDoc('Roll a service back to a kept revision (default: the one before)', { body: RollbackSchema, bodyOptional: true, invalidCode: 'invalid_rollback' }), async (request) => {
    const { name } = request.params;
    const ifRevision = ifMatchOf(request);
    find(name);
    const checked = rollbackBody.validate(request.body ?? {});
    if (!checked.ok) throw invalid('invalid_rollback', checked.errors);
    const result = await services.rollback(name, checked.value.revision, ifRevision);
    if (result.kind === 'missing') throw notFound(name);
    if (result.kind === 'refused') throw new ApiError(409, result.code, result.message);
    const view = services.view(result.record, { offset: 0, limit: DEFAULT_REPLICA_LIMIT });
    return { ...view, outcome: result.outcome, rolledBackTo: result.rolledBackTo };
  });

  // Resuming what is not paused is 409: the request is sound, the update's state refuses it.
  app.post<{ Params: { name: string } }>('/v1/services/:name/resume', serviceDoc("Resume a service's paused update"), async (request) => {
    const { name } = request.params;
    find(name);
    const result = await services.resume(name);
    if (result.kind === 'missing') throw notFound(name);
    if (result.kind === 'not_paused') {
      const now = result.state === null ? 'the service has had no update' : `the service's update is ${result.state}`;
      throw new ApiError(409, 'not_paused', `nothing to resume: ${now}`);
    }
    return services.view(result.record, { offset: 0, limit: DEFAULT_REPLICA_LIMIT });
  });

  app.post<{ Params: { name: string } }>('/v1/services/:name/scale', serviceDoc('Scale a replicated service', { body: ScaleSchema, invalidCode: 'invalid_scale' }), async (request) => {
    const { name } = request.params;
    const ifRevision = ifMatchOf(request);
    find(name);
    const checked = scaleBody.validate(request.body);
    if (!checked.ok) throw invalid('invalid_scale', checked.errors);
    const result = await services.scale(name, checked.value.replicas, ifRevision);
    if (result.kind === 'missing') throw notFound(name);
    if (result.kind === 'global') {
      throw invalid('invalid_scale', [{ path: 'replicas', message: `scale applies to replicated services; "${name}" is global` }]);
    }
    const view = services.view(result.record, { offset: 0, limit: DEFAULT_REPLICA_LIMIT });
    return { ...view, outcome: result.outcome };
  });

  // A move no node can take is 409: the request is sound, the fleet's state refuses it now.
  app.post<{ Params: { name: string; id: string } }>('/v1/services/:name/replicas/:id/move', serviceDoc('Move a replica to another node (default: any that can take it)', { params: ReplicaParams, body: MoveSchema, bodyOptional: true, invalidCode: 'invalid_move' }), async (request, reply) => {
    const { name, id } = request.params;
    find(name);
    const checked = moveBody.validate(request.body ?? {});
    if (!checked.ok) throw invalid('invalid_move', checked.errors);
    const result = await services.move(name, id, checked.value.toNode ?? null);
    if (result.kind === 'missing') throw notFound(name);
    if (result.kind === 'replica_missing') throw new ApiError(404, 'replica_not_found', `service "${name}" has no replica "${id}"`);
    if (result.kind === 'refused') throw new ApiError(409, result.code, result.message);
    const where = result.toNode === null ? 'another node the scheduler picks' : `node ${result.toNode}`;
    const data =
      result.volumes.length === 0
        ? ''
        : ` Its volumes' data (${result.volumes.join(', ')}) does not move: it stays on node ${result.fromNode}, and the new replica starts with the volumes of its own node.`;
    return reply.status(202).send({
      service: name,
      replicaId: result.replicaId,
      replacement: result.replacement,
      fromNode: result.fromNode,
      toNode: result.toNode,
      dataMoved: false,
      volumesLeftOn: result.volumes.length === 0 ? null : result.fromNode,
      message: `replica ${result.replicaId} moves to ${where} as ${result.replacement}; it serves until the new one does.${data}`,
    });
  });

  // Volumes hold data no one can make again: a plain delete keeps them, and says so.
  app.delete<{ Params: { name: string }; Querystring: { purgeVolumes?: string } }>('/v1/services/:name', serviceDoc('Delete a service (its volumes are kept unless purged)', { querystring: DeleteQuery }), async (request) => {
    const { name } = request.params;
    const ifRevision = ifMatchOf(request);
    find(name);
    const flag = request.query.purgeVolumes;
    if (flag !== undefined && flag !== 'true' && flag !== 'false') {
      throw invalid('invalid_query', [{ path: 'purgeVolumes', message: `must be "true" or "false", got "${flag.slice(0, 40)}"` }]);
    }
    const result = await services.delete(name, { purgeVolumes: flag === 'true', ifRevision });
    if (!result) throw notFound(name);
    const { volumes, purged } = result;
    // A service without volumes answers as it always did.
    if (volumes.length === 0) return { name, deleted: true };
    const message = purged
      ? `service deleted; its volumes (${volumes.join(', ')}) are removed from every node once its containers are gone there (nodes away do it when they return)`
      : `service deleted; its volumes (${volumes.join(', ')}) are kept on the nodes: DELETE with ?purgeVolumes=true removes them, and a service of the same name finds them again`;
    return { name, deleted: true, volumesKept: purged ? [] : volumes, volumesPurged: purged ? volumes : [], message };
  });
}
