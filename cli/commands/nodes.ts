import type { Command } from 'commander';
import { CliError, UsageError } from '../cli-error.js';
import type { HubClient } from '../client.js';
import { age, labelsText, printJson, printYaml, renderTable } from '../output.js';
import { listAll, withListOptions, type ListOptions } from '../pages.js';
import type { CommandContext } from '../command-context.js';
import { labelSelector } from '../selector.js';

/** The node view's fields the tables show (GET /v1/nodes). */
export interface NodeView {
  id: string;
  name: string;
  state: string;
  scheduling?: string;
  labels: Record<string, string>;
  facts: { arch?: string; os?: string } | null;
  advertiseAddress: string | null;
  lastSeenAt: string | null;
  warnings?: string[];
}

const nodePath = (id: string) => `/v1/nodes/${encodeURIComponent(id)}`;

/** A node by id, or else by its unique name, with its ETag (its revision, for If-Match). */
export async function findNode(client: HubClient, ref: string): Promise<{ node: NodeView; etag: string | null }> {
  const byId = await client.findTagged<NodeView>(nodePath(ref));
  if (byId) return { node: byId.body, etag: byId.etag };
  if (/^[^\s,()=!]+$/.test(ref)) {
    const page = await client.call<{ nodes: NodeView[] }>('GET', '/v1/nodes', { query: { selector: `node.name==${ref}`, limit: 2 } });
    const byName = page.nodes.find((n) => n.name === ref);
    const tagged = byName ? await client.findTagged<NodeView>(nodePath(byName.id)) : null;
    if (tagged) return { node: tagged.body, etag: tagged.etag };
  }
  throw new CliError(`no node with id or name "${ref}" (tether nodes ls lists them)`);
}

/**
 * `k=v` sets a label, `k-` removes it (as kubectl label does); the rest stay. The hub keeps a join
 * token's labels whatever is sent.
 */
export function changedLabels(current: Record<string, string>, changes: readonly string[]): Record<string, string> {
  const labels = { ...current };
  for (const change of changes) {
    if (/^[^=]+-$/.test(change)) {
      delete labels[change.slice(0, -1)];
      continue;
    }
    const eq = change.indexOf('=');
    if (eq <= 0) throw new UsageError(`${change}: expected key=value to set a label, or key- to remove it`);
    labels[change.slice(0, eq)] = change.slice(eq + 1);
  }
  return labels;
}

function nodeRows(nodes: readonly NodeView[], nowMs: number): unknown[][] {
  return nodes.map((n) => [n.name, n.id, n.state, n.scheduling, n.facts?.arch, labelsText(n.labels), n.advertiseAddress, age(n.lastSeenAt, nowMs)]);
}
const NODE_HEADERS = ['name', 'id', 'state', 'scheduling', 'arch', 'labels', 'address', 'seen'];

export function registerNodes(program: Command, ctx: CommandContext): void {
  const nodes = program.command('nodes').description('the fleet: list, inspect, label and remove nodes');

  withListOptions(nodes.command('ls').description('list nodes, a page at a time from the hub until the last'), 'nodes', ['ready', 'not_ready', 'unreachable', 'lost'])
    .action(async (options: ListOptions, command: Command) => {
      const selector = labelSelector('node.labels', options.selector);
      const client = await ctx.client(command);
      const list = await listAll<NodeView>(client, '/v1/nodes', 'nodes', { selector, state: options.state }, options.limit, options.pageSize);
      if (ctx.flags(command).json) return printJson(ctx.io, { nodes: list });
      ctx.io.stdout.write(renderTable(NODE_HEADERS, nodeRows(list, ctx.nowMs())));
    });

  nodes
    .command('inspect')
    .description("a node's whole view: facts, conditions, warnings, generations")
    .argument('<node>', 'node id or name')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const { node } = await findNode(await ctx.client(command), ref);
      if (ctx.flags(command).json) printJson(ctx.io, node);
      else printYaml(ctx.io, node);
    });

  nodes
    .command('label')
    .description("set (key=value) or remove (key-) a node's labels; replicas that no longer match move off")
    .argument('<node>', 'node id or name')
    .argument('<changes...>', 'key=value to set, key- to remove')
    .action(async (ref: string, changes: string[], _options: unknown, command: Command) => {
      const client = await ctx.client(command);
      const { node, etag } = await findNode(client, ref);
      const labels = changedLabels(node.labels, changes);
      // If-Match: labels someone else set since this read are refused (412), not dropped.
      const updated = await client.call<NodeView>('PATCH', nodePath(node.id), { body: { labels }, ...(etag ? { ifMatch: etag } : {}) });
      if (ctx.flags(command).json) return printJson(ctx.io, updated);
      ctx.io.stdout.write(`node ${updated.name} (${updated.id}) labels: ${labelsText(updated.labels) || '(none)'}\n`);
    });

  nodes
    .command('rm')
    .description('remove a node for good: its credential is refused from then on, its replicas are placed anew')
    .argument('<node>', 'node id or name')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const client = await ctx.client(command);
      const { node } = await findNode(client, ref);
      const removed = await client.call<{ message?: string; replicas?: unknown[] }>('DELETE', nodePath(node.id));
      if (ctx.flags(command).json) return printJson(ctx.io, removed);
      ctx.io.stdout.write(`node ${node.name} (${node.id}) removed${removed.message ? `: ${removed.message}` : ''}\n`);
    });
}
