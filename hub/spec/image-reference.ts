/**
 * The image reference grammar the Docker engine parses (distribution's `reference` package):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component ( "/" path-component )*     (at most 255 characters)
 *   domain    := host [ ":" port ]       host := dns-name | "[" ipv6 "]"
 *   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 *   digest    := algorithm ":" hex{32,}
 *
 * Checked on the hub, so that a reference the engine would refuse is a 400 naming `image` instead
 * of a replica that fails on every node it lands on.
 */
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])`;
const domain = `${host}(?::[0-9]+)?`;
const pathComponent = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const name = `(?:${domain}/)?${pathComponent}(?:/${pathComponent})*`;
const tag = '[\\w][\\w.-]{0,127}';
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE_RE = new RegExp(`^(${name})(?::${tag})?(?:@${digest})?$`);

/** The engine's limit on the name part (without tag and digest). */
export const MAX_IMAGE_NAME_LENGTH = 255;

/** Why `ref` is not an image reference the engine accepts, or null when it is one. */
export function imageReferenceError(ref: string): string | null {
  // Named first: a reference that looks right but for an invisible character is the hardest to spot.
  if (/[\s\p{Cc}]/u.test(ref)) return 'must not contain whitespace or control characters';
  if (/[^\x21-\x7e]/.test(ref)) return 'must contain only printable ASCII characters';
  const m = REFERENCE_RE.exec(ref);
  if (!m) {
    return 'is not an image reference: expected [registry[:port]/]name[:tag][@algorithm:hex], with a lower-case name of letters, digits and single separators (".", "_", "__", "-")';
  }
  if (m[1]!.length > MAX_IMAGE_NAME_LENGTH) return `name must be at most ${MAX_IMAGE_NAME_LENGTH} characters`;
  return null;
}
