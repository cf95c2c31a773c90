import type { TSchema } from 'typebox';
import { AGENT_FRAME_SCHEMAS, HUB_FRAME_SCHEMAS, type AgentFrame, type HubFrame } from './protocol.js';
import { Validator, describeErrors } from './validation.js';

export type Decoded<T> = { ok: true; frame: T } | { ok: false; reason: string };

type Validators = Record<string, Validator<TSchema>>;

function compileAll(schemas: Record<string, TSchema>): Validators {
  return Object.fromEntries(Object.entries(schemas).map(([type, schema]) => [type, new Validator(schema)]));
}

const agentValidators = compileAll(AGENT_FRAME_SCHEMAS);
const hubValidators = compileAll(HUB_FRAME_SCHEMAS);

function decode<T>(data: string | Buffer, validators: Validators): Decoded<T> {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return { ok: false, reason: 'frame is not valid JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, reason: 'frame is not a JSON object' };
  const type = (value as { type?: unknown }).type;
  // Dispatch on `type` first: one schema check per frame, and a reason that names the real field.
  const validator = typeof type === 'string' && Object.hasOwn(validators, type) ? validators[type] : undefined;
  if (!validator) return { ok: false, reason: `unknown frame type ${JSON.stringify(type)?.slice(0, 64) ?? 'undefined'}` };
  if (validator.check(value)) return { ok: true, frame: value as T };
  return { ok: false, reason: `invalid ${type} frame: ${describeErrors(validator.errors(value, 3))}` };
}

export function decodeAgentFrame(data: string | Buffer): Decoded<AgentFrame> {
  return decode<AgentFrame>(data, agentValidators);
}

export function decodeHubFrame(data: string | Buffer): Decoded<HubFrame> {
  return decode<HubFrame>(data, hubValidators);
}

export function encodeFrame(frame: AgentFrame | HubFrame): string {
  return JSON.stringify(frame);
}
