/**
 * Optimistic concurrency for operators' writes: a write that carries the revision its author last
 * saw (HTTP `If-Match: "<revision>"`) is refused when the record has moved on since, so that two
 * operators never silently overwrite each other. A write without one goes through as before.
 * The check runs where the write reads the record it builds on, in the same step: no other write
 * can land between the two.
 */

/**
 * `any`: the record must exist (`If-Match: *`); `absent`: it must not (`If-None-Match: *`, a
 * create that must not overwrite one made meanwhile); otherwise its revision must be one of these.
 */
export type RevisionCondition = { kind: 'any' } | { kind: 'absent' } | { kind: 'revisions'; revisions: readonly number[] };

/** A write refused because the record is not at the revision its author expected. */
export class RevisionMismatchError extends Error {
  readonly code = 'revision_mismatch';

  constructor(
    /** Null: there is no such record (If-Match asks for one that exists). */
    readonly currentRevision: number | null,
    what: string,
    absentAsked = false,
  ) {
    super(
      currentRevision === null
        ? `${what} does not exist: If-Match names a revision of one that does`
        : absentAsked
          ? `${what} exists already (revision ${currentRevision}): If-None-Match: * creates only one that does not`
          : `${what} is at revision ${currentRevision}, not the one If-Match names: read it again and retry`,
    );
  }
}

/** Throws RevisionMismatchError unless `current` (null: no record) meets `condition`; none: always met. */
export function checkRevision(condition: RevisionCondition | undefined, current: number | null, what: string): void {
  if (condition === undefined) return;
  if (condition.kind === 'absent') {
    if (current !== null) throw new RevisionMismatchError(current, what, true);
    return;
  }
  const met = current !== null && (condition.kind === 'any' || condition.revisions.includes(current));
  if (!met) throw new RevisionMismatchError(current, what);
}

/** At most this many entity tags in one If-Match. */
const MAX_TAGS = 16;
const TAG_RE = /^"?(\d{1,15})"?$/;

/**
 * An If-Match header's revisions: `"5"` (or `5`), a list of them, or `*`; or why it is refused.
 * Weak tags (`W/"5"`) never match a write (RFC 9110's strong comparison), so they are refused.
 */
export function parseIfMatch(header: string): RevisionCondition | { error: string } {
  const text = header.trim();
  if (text === '*') return { kind: 'any' };
  const tags = text.split(',').map((t) => t.trim());
  if (tags.length > MAX_TAGS) return { error: `${tags.length} revisions: at most ${MAX_TAGS}` };
  const revisions: number[] = [];
  for (const tag of tags) {
    const m = TAG_RE.exec(tag);
    if (!m || (tag.startsWith('"') !== tag.endsWith('"'))) {
      return { error: `expected a revision in quotes, like "3" (or *), got ${JSON.stringify(tag.slice(0, 40))}` };
    }
    revisions.push(Number(m[1]));
  }
  return { kind: 'revisions', revisions };
}

/** The entity tag of a record at `revision`, as ETag sends it and If-Match takes it back. */
export const etagOf = (revision: number): string => `"${revision}"`;
