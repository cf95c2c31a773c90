import type { ContainerSpec } from '../../shared/container-spec.js';
import { describeRef, type NodeValues } from './node-values.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A container's whole environment: the spec's plain `env`, and each `envFrom` variable set to the
 * text of the config or secret version it names. A value that is not text cannot be one: an
 * error, rather than replacement characters the program would take for the value.
 */
export function resolveEnv(spec: ContainerSpec, values: NodeValues): Record<string, string> {
  const env = { ...spec.env };
  for (const [variable, ref] of Object.entries(spec.envFrom ?? {})) {
    const data = values.require(ref);
    let text: string;
    try {
      text = utf8.decode(data);
    } catch {
      throw new Error(`${describeRef(ref)} is not UTF-8 text, so it cannot be the value of ${variable} (mount it as a file instead)`);
    }
    // The engine passes the environment as C strings: a NUL would cut the value short unseen.
    if (text.includes('\0')) throw new Error(`${describeRef(ref)} holds a NUL byte, so it cannot be the value of ${variable} (mount it as a file instead)`);
    env[variable] = text;
  }
  return env;
}
