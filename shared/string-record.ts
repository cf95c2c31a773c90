import Type, { type TSchema } from 'typebox';

/**
 * A record of strings whose keys are checked too. TypeBox turns a Record's key schema into a
 * `patternProperties` pattern and nothing else: it drops minLength/maxLength, and a key the
 * pattern does not match is let through with its value unchecked (`{ "A-B": 1 }` passed a
 * `^[A-Za-z_]...$` key pattern). So keys are checked with `propertyNames`, and a key that escapes
 * the `^.*$` pattern (one with a line break) is refused rather than left unchecked.
 */
export const StringRecord = <V extends TSchema>(
  key: { pattern?: string; minLength?: number; maxLength?: number },
  value: V,
  opts: { maxProperties?: number } = {},
) => Type.Record(Type.String(), value, { ...opts, propertyNames: Type.String(key), additionalProperties: false });
