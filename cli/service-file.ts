import { parseAllDocuments } from 'yaml';
import { CliError } from './cli-error.js';
import { jsonErrorOffset } from './json-error-offset.js';

/** A service as `apply` sends it: its name, and its spec (the rest of the document). */
export interface ServiceDocument {
  name: string;
  spec: Record<string, unknown>;
}

/** Far more than one fleet's file holds; a bound all the same. */
export const MAX_SERVICES_PER_FILE = 1000;

/**
 * The services of an `apply` file. YAML or JSON; each YAML document (documents are separated by
 * `---`) is one service `{ name, ...spec }` or a list of them; a JSON file is one service or a
 * list. Documents that are empty are skipped. A file that does not parse is refused whole, with
 * the line and column, before anything is sent.
 */
export function parseServiceFile(text: string, source: string): ServiceDocument[] {
  const values = looksLikeJson(text, source) ? [parseJson(text, source)] : parseYaml(text, source);
  const services: ServiceDocument[] = [];
  const seen = new Set<string>();
  values.forEach((value, docIndex) => {
    const items = Array.isArray(value) ? value : value === null || value === undefined ? [] : [value];
    items.forEach((item, itemIndex) => {
      const where = `${source}: ${values.length > 1 ? `document ${docIndex + 1}, ` : ''}${Array.isArray(value) ? `item ${itemIndex + 1}` : 'service'}`;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new CliError(`${where}: expected a service ({ name, image, ... }), got ${Array.isArray(item) ? 'a list' : typeof item}`);
      const { name, ...spec } = item as Record<string, unknown>;
      if (typeof name !== 'string' || name === '') throw new CliError(`${where}: name: a service needs a name`);
      if (seen.has(name)) throw new CliError(`${where}: name: "${name}" appears twice in the file`);
      seen.add(name);
      services.push({ name, spec });
    });
  });
  if (services.length > MAX_SERVICES_PER_FILE) throw new CliError(`${source}: ${services.length} services; at most ${MAX_SERVICES_PER_FILE} in one file`);
  return services;
}

function looksLikeJson(text: string, source: string): boolean {
  return source.endsWith('.json') || /^\s*[[{]\s*"/.test(text);
}

/** Line and column (from 1) of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const offset = jsonErrorOffset(text);
    const at = offset === null ? null : lineAndColumn(text, offset);
    // V8's words, without the position (said as line and column) or its quote of the text.
    const why = (error as Error).message.replace(/\s*in JSON at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '');
    throw new CliError(`${source}${at ? `:${at.line}:${at.col}` : ''}: not valid JSON: ${why}`);
  }
}

function parseYaml(text: string, source: string): unknown[] {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) return [];
  return documents.map((document) => {
    const error = document.errors[0];
    if (error) {
      const at = error.linePos?.[0];
      const why = (error.message.split('\n')[0] ?? error.code).replace(/ at line \d+, column \d+:?$/, '');
      throw new CliError(`${source}${at ? `:${at.line}:${at.col}` : ''}: not valid YAML: ${why}`);
    }
    try {
      return document.toJS({ maxAliasCount: 100 }) as unknown;
    } catch (error) {
      // Aliases that expand past the bound (a "billion laughs" file), and the like.
      throw new CliError(`${source}: not valid YAML: ${(error as Error).message}`);
    }
  });
}
