import type { ValueSource } from '../../shared/container-spec.js';
import { MAX_TARGET_VALUES, type TargetValue } from '../../shared/protocol.js';

export interface ValueRef {
  source: ValueSource;
  name: string;
  version: number;
}

/** Why a value is not here, when nothing more precise is known: the hub sends values only with the target that names them. */
const NOT_SENT = 'the target this node runs did not carry it (the hub sends a value only with a target whose replicas name it)';

/** A replica names a config or secret (or a version of one) that this node does not hold. */
export class MissingValueError extends Error {
  readonly code = 'value_not_on_node';

  constructor(ref: ValueRef, why: string) {
    super(`${ref.source} ${ref.name} version ${ref.version} is not on this node: ${why}`);
    this.name = 'MissingValueError';
  }
}

export function refKey(ref: ValueRef): string {
  return `${ref.source}\0${ref.name}\0${ref.version}`;
}

export function describeRef(ref: ValueRef): string {
  return `${ref.source} ${ref.name} version ${ref.version}`;
}

/**
 * The configs and secrets of the target this node runs, in memory: exactly what the last target
 * carried (at most MAX_TARGET_VALUES, each at most MAX_VALUE_BYTES), replaced whole by the next.
 */
export class NodeValues {
  private values = new Map<string, Buffer>();
  /** Why a value of the running target may be missing (a cache that kept no secrets), said in errors. */
  private missingWhy = NOT_SENT;

  /** `missingWhy`: what to tell of a value the target names but this one lacks; default NOT_SENT. */
  replace(values: readonly TargetValue[] | undefined, missingWhy?: string): void {
    if ((values?.length ?? 0) > MAX_TARGET_VALUES) throw new Error(`invariant: a target carries at most ${MAX_TARGET_VALUES} values`);
    const next = new Map<string, Buffer>();
    for (const v of values ?? []) next.set(refKey(v), Buffer.from(v.data, 'base64'));
    this.values = next;
    this.missingWhy = missingWhy ?? NOT_SENT;
  }

  get size(): number {
    return this.values.size;
  }

  get(ref: ValueRef): Buffer | undefined {
    return this.values.get(refKey(ref));
  }

  /** The value's bytes, or a MissingValueError saying why it is not here. */
  require(ref: ValueRef): Buffer {
    const data = this.get(ref);
    if (data === undefined) throw new MissingValueError(ref, this.missingWhy);
    return data;
  }
}
