/**
 * The agent's own registry credentials (`--registry-auth-file`): a JSON object keyed by registry
 * host[:port], used for pulls whose spec carries no `registryAuth`:
 *
 *     { "127.0.0.1:5001": { "username": "u", "password": "p" },
 *       "registry.example.com": { "username": "robot", "password": "..." } }
 */
import { readFile } from 'node:fs/promises';
import Type, { type Static } from 'typebox';
import { Validator, describeErrors } from '../shared/validation.js';

/** A registry host as it appears in an image reference: a name or IPv4 address, or [IPv6], and an optional port. */
const REGISTRY_HOST_PATTERN = '^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?$';
const MAX_STRING = 4096;

const RegistryCredentialSchema = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: MAX_STRING }),
    password: Type.String({ minLength: 1, maxLength: MAX_STRING }),
  },
  { additionalProperties: false },
);

export const RegistryAuthFileSchema = Type.Record(Type.String(), RegistryCredentialSchema, {
  propertyNames: Type.String({ pattern: REGISTRY_HOST_PATTERN }),
  additionalProperties: false,
});

export type RegistryCredential = Static<typeof RegistryCredentialSchema>;
export type RegistryAuthMap = Record<string, RegistryCredential>;

const fileValidator = new Validator(RegistryAuthFileSchema);
const entryValidator = new Validator(RegistryCredentialSchema);
const hostRe = new RegExp(REGISTRY_HOST_PATTERN);

/**
 * Why a parsed file does not fit, entry by entry: the generic field paths would read
 * `127.0.0.1:5001.password`, which is hard to tell apart from a host name.
 */
function explain(value: unknown): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return 'must be a JSON object keyed by registry host[:port], like { "127.0.0.1:5001": { "username": "u", "password": "p" } }';
  }
  const problems: string[] = [];
  for (const [host, entry] of Object.entries(value)) {
    if (!hostRe.test(host)) {
      problems.push(`"${host}" is not a registry host[:port] (like 127.0.0.1:5001 or registry.example.com; no scheme, no path)`);
      continue;
    }
    const errors = entryValidator.errors(entry);
    if (errors.length > 0) problems.push(`"${host}": ${describeErrors(errors)}`);
  }
  return problems.length > 0 ? problems.join('; ') : describeErrors(fileValidator.errors(value));
}

/**
 * JSON.parse's complaint without the piece of the file V8 quotes in it
 * (`Unexpected token 'o', ..."assword":topsecret}}" is not valid JSON`), with a line and column.
 */
function jsonProblem(text: string, error: Error): string {
  const head = error.message.split('"')[0]!.replace(/[\s,.]+$/, '').replace(/ in JSON at position \d+.*$/, '');
  const position = /at position (\d+)/.exec(error.message);
  if (!position) return head;
  const before = text.slice(0, Number(position[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `${head} (line ${line}, column ${column})`;
}

/** Reads and checks the file; throws an Error naming the file and the problem. */
export async function loadRegistryAuthFile(path: string): Promise<RegistryAuthMap> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw new Error(`cannot read the registry auth file ${path}: ${reason}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // No `cause`: JSON.parse's own message may quote the file, passwords and all.
    throw new Error(`the registry auth file ${path} is not valid JSON: ${jsonProblem(text, error as Error)}`);
  }
  if (!fileValidator.check(value)) throw new Error(`the registry auth file ${path} is refused: ${explain(value)}`);
  // A fresh object without a prototype: a key like "__proto__" or "constructor" never resolves to something else.
  const out: RegistryAuthMap = Object.create(null) as RegistryAuthMap;
  for (const [host, entry] of Object.entries(value)) out[host] = { username: entry.username, password: entry.password };
  return out;
}
