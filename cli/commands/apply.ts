import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CliError, UsageError } from '../cli-error.js';
import { HubApiError, type HubClient } from '../client.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';
import type { CommandContext } from '../command-context.js';
import { parseServiceFile, type ServiceDocument } from '../service-file.js';
import { servicePath, type ServiceView } from './services.js';

/** An apply file is a fleet's services, not data: a bound on what is read into memory. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** What `PUT ...?dryRun=true` answers (contracts: dry run). */
export interface DryRunAnswer {
  dryRun: true;
  outcome: 'created' | 'updated' | 'unchanged';
  changes: Array<{ path: string; from?: unknown; to?: unknown }>;
  placement: {
    placed: Array<{ replica?: string; node: string; nodeName?: string }>;
    pending: number;
    reasons?: unknown[];
    /** Replicas a scale-down would remove, and ones a change would replace. */
    removed?: number;
    replacing?: number;
  };
}

interface Applied {
  name: string;
  outcome?: string;
  revision?: number;
  dryRun?: DryRunAnswer;
  error?: string;
}

async function readInput(file: string, io: CliIo): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of io.stdin) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      bytes += buffer.length;
      if (bytes > MAX_FILE_BYTES) throw new CliError(`stdin: more than ${MAX_FILE_BYTES / 1024 / 1024} MiB; not a services file`);
      chunks.push(buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    const buffer = await readFile(file);
    if (buffer.length > MAX_FILE_BYTES) throw new Error(`over ${MAX_FILE_BYTES / 1024 / 1024} MiB; not a services file`);
    return buffer.toString('utf8');
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
}

const shown = (value: unknown) => (value === undefined ? '(none)' : JSON.stringify(value));

/** A dry run in words: what would change, where new replicas would go, what would wait. */
export function dryRunText(name: string, answer: DryRunAnswer): string {
  const lines = [`service ${name}: would be ${answer.outcome} (dry run: nothing changed)`];
  // A new service's changes are its whole spec, every default included: the file already says it.
  if (answer.outcome !== 'created') for (const change of answer.changes) lines.push(`  ${change.path}: ${shown(change.from)} -> ${shown(change.to)}`);
  const placed = answer.placement.placed;
  if (placed.length > 0) {
    const where = placed.map((p) => `${p.replica ? `${p.replica} on ` : ''}${p.nodeName ? `${p.nodeName} (${p.node})` : p.node}`);
    lines.push(`  placed on: ${where.join(', ')}`);
  }
  if (answer.placement.pending > 0) {
    const reasons = (answer.placement.reasons ?? []).map((r) => (typeof r === 'string' ? r : JSON.stringify(r)));
    lines.push(`  pending: ${answer.placement.pending}${reasons.length > 0 ? ` (${reasons.join('; ')})` : ''}`);
  }
  if (answer.placement.replacing) lines.push(`  replaced: ${answer.placement.replacing}`);
  if (answer.placement.removed) lines.push(`  removed: ${answer.placement.removed}`);
  return `${lines.join('\n')}\n`;
}

/**
 * One service: read its revision, then PUT with `If-Match` on it, so that a change someone made
 * between the two is refused (412), never overwritten; a service not there is created with
 * `If-None-Match: *`, so that one someone created meanwhile is not overwritten either.
 */
async function applyOne(client: HubClient, doc: ServiceDocument, dryRun: boolean): Promise<Applied> {
  const current = await client.find<ServiceView>(servicePath(doc.name), { limit: 0 });
  const answer = await client.call<(ServiceView & { outcome: string }) | DryRunAnswer>('PUT', servicePath(doc.name), {
    body: doc.spec,
    query: { dryRun: dryRun ? 'true' : undefined },
    ...(current ? { ifMatch: current.revision } : { ifNoneMatch: '*' as const }),
  });
  if (dryRun) return { name: doc.name, outcome: answer.outcome, dryRun: answer as DryRunAnswer };
  return { name: doc.name, outcome: answer.outcome, revision: (answer as ServiceView).revision };
}

export function registerApply(program: Command, ctx: CommandContext): void {
  program
    .command('apply')
    .description('create or update the services of a YAML or JSON file (each document or list item: { name, ...spec })')
    .requiredOption('-f, --file <file>', 'the file, or - for stdin')
    .option('--dry-run', 'print what would change and where new replicas would go; change nothing')
    .action(async (options: { file: string; dryRun?: boolean }, command: Command) => {
      const source = options.file === '-' ? 'stdin' : options.file;
      const docs = parseServiceFile(await readInput(options.file, ctx.io), source);
      if (docs.length === 0) throw new UsageError(`${source}: no services in it`);
      const client = await ctx.client(command);
      const json = ctx.flags(command).json;
      const results: Applied[] = [];
      // One at a time and on to the next after a refusal, as kubectl apply does: each line says what became of each.
      for (const doc of docs) {
        try {
          const applied = await applyOne(client, doc, options.dryRun === true);
          results.push(applied);
          if (json) continue;
          if (applied.dryRun) ctx.io.stdout.write(dryRunText(doc.name, applied.dryRun));
          else ctx.io.stdout.write(`service ${doc.name} ${applied.outcome} (revision ${applied.revision})\n`);
        } catch (error) {
          if (!(error instanceof HubApiError)) throw error;
          results.push({ name: doc.name, error: error.message });
          if (!json) ctx.io.stderr.write(`tether: service ${doc.name}: ${error.message}\n`);
        }
      }
      if (json) printJson(ctx.io, { services: results });
      const failed = results.filter((r) => r.error !== undefined).length;
      if (failed > 0) throw new CliError(`${failed} of ${results.length} service(s) not applied`);
    });
}
