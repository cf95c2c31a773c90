import type { Command } from 'commander';
import { CliError } from '../cli-error.js';
import type { HubClient } from '../client.js';
import { age, printJson, printYaml, renderTable } from '../output.js';
import { listAll, withListOptions, type ListOptions } from '../pages.js';
import type { CommandContext } from '../command-context.js';
import { wholeNumber } from '../option-values.js';
import { labelSelector } from '../selector.js';

/** The service view's fields the tables show (GET /v1/services/:name). */
export interface ServiceView {
  name: string;
  /** ready, degraded, updating, paused (lists only). */
  state?: string;
  revision: number;
  updatedAt: string;
  spec: { image: string; mode?: string; replicas?: number };
  status: {
    desired: number;
    running: number;
    states: Record<string, number>;
    replicas: ReplicaView[];
    replicaPage: { offset: number; limit: number; total: number };
  };
  rollout?: { state: string } | null;
}

interface ReplicaView {
  replicaId: string;
  nodeId: string | null;
  state: string;
  health: string | null;
  restarts: number;
  revision: number | null;
  error: string | null;
}

/** The most the hub lists of a service's replicas in one answer. */
const REPLICA_PAGE = 10_000;
/** Values one `node.id in (...)` selector term takes (the constraint syntax's bound). */
const IDS_PER_LOOKUP = 64;
/** Beyond this many nodes, ps shows node ids rather than ask the hub for every name. */
const MAX_NAMED_NODES = 512;

/** Node names by id, for the nodes given (a few requests; none past MAX_NAMED_NODES). */
async function nodeNames(client: HubClient, ids: ReadonlySet<string>): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  if (ids.size > MAX_NAMED_NODES) return names;
  const all = [...ids];
  for (let i = 0; i < all.length; i += IDS_PER_LOOKUP) {
    const some = all.slice(i, i + IDS_PER_LOOKUP);
    const nodes = await listAll<{ id: string; name: string }>(client, '/v1/nodes', 'nodes', { selector: `node.id in (${some.join(', ')})` });
    for (const n of nodes) names.set(n.id, n.name);
  }
  return names;
}

export const servicePath = (name: string) => `/v1/services/${encodeURIComponent(name)}`;

const notFound = (name: string) => new CliError(`no service named "${name}" (tether services ls lists them)`);

export async function findService(client: HubClient, name: string, replicaLimit?: number): Promise<ServiceView> {
  const view = await client.find<ServiceView>(servicePath(name), replicaLimit === undefined ? undefined : { limit: replicaLimit });
  if (!view) throw notFound(name);
  return view;
}

/** `running=2 pending=1`, the replicas per state. */
function statesText(states: Record<string, number>): string {
  return Object.entries(states)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${state}=${n}`)
    .join(' ');
}

export function registerServices(program: Command, ctx: CommandContext): void {
  const services = program.command('services').description('services: list, their replicas, inspect, remove, scale');

  withListOptions(services.command('ls').description('list services with their counts, a page at a time from the hub until the last'), 'services', ['ready', 'degraded', 'updating', 'paused'])
    .action(async (options: ListOptions, command: Command) => {
      const selector = labelSelector('service.labels', options.selector);
      const client = await ctx.client(command);
      const list = await listAll<ServiceView>(client, '/v1/services', 'services', { selector, state: options.state }, options.limit, options.pageSize);
      if (ctx.flags(command).json) return printJson(ctx.io, { services: list });
      const now = ctx.nowMs();
      const rows = list.map((s) => [
        s.name,
        s.state,
        s.spec.mode ?? 'replicated',
        `${s.status.running}/${s.status.desired}`,
        statesText(s.status.states),
        s.revision,
        s.rollout?.state,
        s.spec.image,
        age(s.updatedAt, now),
      ]);
      ctx.io.stdout.write(renderTable(['name', 'state', 'mode', 'running', 'states', 'revision', 'rollout', 'image', 'updated'], rows));
    });

  services
    .command('ps')
    .description("a service's replicas: where each runs, its state and its last error")
    .argument('<service>')
    .action(async (name: string, _options: unknown, command: Command) => {
      const client = await ctx.client(command);
      const replicas: ReplicaView[] = [];
      for (let offset = 0; ; ) {
        const view = await client.find<ServiceView>(servicePath(name), { offset, limit: REPLICA_PAGE });
        if (!view) throw notFound(name);
        replicas.push(...view.status.replicas);
        offset += view.status.replicas.length;
        if (view.status.replicas.length === 0 || offset >= view.status.replicaPage.total) break;
      }
      if (ctx.flags(command).json) return printJson(ctx.io, { service: name, replicas });
      const names = await nodeNames(client, new Set(replicas.flatMap((r) => (r.nodeId === null ? [] : [r.nodeId]))));
      const rows = replicas.map((r) => [r.replicaId, r.nodeId === null ? null : (names.get(r.nodeId) ?? r.nodeId), r.state, r.health, r.restarts, r.revision, r.error]);
      ctx.io.stdout.write(renderTable(['replica', 'node', 'state', 'health', 'restarts', 'revision', 'error'], rows));
    });

  services
    .command('inspect')
    .description("a service's whole view: spec, revision, status, rollout, and its first replicas")
    .argument('<service>')
    .action(async (name: string, _options: unknown, command: Command) => {
      const view = await findService(await ctx.client(command), name);
      if (ctx.flags(command).json) printJson(ctx.io, view);
      else printYaml(ctx.io, view);
    });

  services
    .command('rm')
    .description('remove a service and its containers; its volumes are kept unless --purge-volumes')
    .argument('<service>')
    .option('--purge-volumes', "remove the service's volumes from every node too")
    .action(async (name: string, options: { purgeVolumes?: boolean }, command: Command) => {
      const client = await ctx.client(command);
      const removed = await client.call<{ message?: string }>('DELETE', servicePath(name), { query: { purgeVolumes: options.purgeVolumes ? 'true' : undefined } });
      if (ctx.flags(command).json) return printJson(ctx.io, removed);
      ctx.io.stdout.write(`service ${name} removed${removed.message ? `: ${removed.message}` : ''}\n`);
    });

  services
    .command('scale')
    .description("change a replicated service's replica count, and nothing else")
    .argument('<service>')
    .argument('<replicas>', 'the new count', wholeNumber(0, 100_000))
    .action(async (name: string, replicas: number, _options: unknown, command: Command) => {
      const client = await ctx.client(command);
      const scaled = await client.call<ServiceView & { outcome: string }>('POST', `${servicePath(name)}/scale`, { body: { replicas } });
      if (ctx.flags(command).json) return printJson(ctx.io, scaled);
      const what = scaled.outcome === 'unchanged' ? 'already has' : 'scaled to';
      ctx.io.stdout.write(`service ${name} ${what} ${replicas} replica(s) (revision ${scaled.revision})\n`);
    });
}
