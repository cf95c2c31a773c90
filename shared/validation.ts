import type { TSchema, Static } from 'typebox';
import { Compile } from 'typebox/compile';

/** One reason a value was refused, with the field it concerns (`ports[0].hostPort`, `` for the root). */
export interface FieldError {
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** JSON pointer (`/ports/0/hostPort`) to the dotted form operators read (`ports[0].hostPort`). */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

export function joinPath(base: string, field: string): string {
  return base === '' ? field : `${base}.${field}`;
}

/**
 * A schema compiled once, checking values and explaining refusals field by field. Unknown fields
 * are reported by name, since TypeBox reports them only on the parent object.
 */
export class Validator<S extends TSchema> {
  private readonly compiled;

  constructor(schema: S) {
    this.compiled = Compile(schema);
  }

  check(value: unknown): value is Static<S> {
    return this.compiled.Check(value);
  }

  validate(value: unknown): Validated<Static<S>> {
    if (this.compiled.Check(value)) return { ok: true, value: value as Static<S> };
    return { ok: false, errors: this.errors(value) };
  }

  errors(value: unknown, maxErrors = 10): FieldError[] {
    const out: FieldError[] = [];
    const seen = new Set<string>();
    for (const e of this.compiled.Errors(value)) {
      const error = e as { keyword: string; instancePath: string; message: string; params: Record<string, unknown> };
      // "schema is false" duplicates the additionalProperties error reported on the parent.
      if (error.keyword === 'boolean') continue;
      const base = pointerToPath(error.instancePath);
      const found: FieldError[] =
        error.keyword === 'additionalProperties'
          ? ((error.params.additionalProperties as string[] | undefined) ?? []).map((name) => ({
              path: joinPath(base, name),
              message: 'unknown field',
            }))
          : error.keyword === 'required'
            ? ((error.params.requiredProperties as string[] | undefined) ?? []).map((name) => ({
                path: joinPath(base, name),
                message: 'is required',
              }))
            : [{ path: base, message: error.message }];
      for (const f of found) {
        const key = `${f.path}\u0000${f.message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(f);
        if (out.length >= maxErrors) return out;
      }
    }
    return out;
  }
}

export function describeErrors(errors: FieldError[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
}
