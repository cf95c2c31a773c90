import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import type { HubClient, Query } from './client.js';
import { collect, wholeNumber } from './option-values.js';

/** The hub's default page; at most 1000 are asked for at once. */
export const DEFAULT_PAGE_SIZE = 500;
export const MAX_PAGE_SIZE = 1000;

/**
 * Every item of a paged list (`GET /v1/nodes`, `GET /v1/services`), following `continue` from
 * page to page until the last, or until `max` items. The hub keeps the order stable under
 * concurrent changes, so nothing is listed twice.
 */
export async function listAll<T>(client: HubClient, path: string, key: string, query: Query, max?: number, pageSize = DEFAULT_PAGE_SIZE): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  for (;;) {
    const want = max === undefined ? pageSize : Math.min(pageSize, max - items.length);
    const page = await client.call<Record<string, unknown>>('GET', path, { query: { ...query, limit: want, continue: token } });
    const list = page[key];
    if (!Array.isArray(list)) throw new CliError(`the hub's answer to GET ${path} has no "${key}" list`);
    items.push(...(list as T[]));
    const next = typeof page.continue === 'string' && page.continue !== '' ? page.continue : undefined;
    if (next === undefined || (max !== undefined && items.length >= max)) break;
    if (next === token) throw new CliError(`the hub answered GET ${path} with the same continue token twice; stopped`);
    token = next;
  }
  return max === undefined ? items : items.slice(0, max);
}

/** What a paged list command (`nodes ls`, `services ls`) is given. */
export interface ListOptions {
  selector: string[];
  state?: string;
  limit?: number;
  pageSize?: number;
}

/** Declares a paged list's options: `noun` is what it lists, `states` what its --state takes. */
export function withListOptions(command: Command, noun: string, states: readonly string[]): Command {
  return command
    .option('-l, --selector <label>', `only ${noun} with this label: key=value or key!=value (repeatable: all must hold)`, collect, [])
    .option('--state <state>', `only ${noun} in this state: ${states.join(', ')} (comma-separated for several)`)
    .option('--limit <n>', 'list at most this many', wholeNumber(1, 1_000_000))
    .option('--page-size <n>', `${noun} asked of the hub at once (default ${DEFAULT_PAGE_SIZE})`, wholeNumber(1, MAX_PAGE_SIZE));
}
