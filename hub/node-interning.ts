/**
 * What most node records share, held once: the fact texts and label sets that devices of a fleet
 * have in common. Used where records are made (joins, relabels: node-directory.ts) and where they
 * are read back from disk (the nodes collection's read-back at open: lowdb-store.ts), so that a
 * hub after a restart holds no more per node than before it.
 */
import type { NodeFacts } from '../shared/protocol.js';
import type { NodeRecord } from './store/store.js';
import { EMPTY_TARGET_HASH } from './target-frame.js';

/**
 * The facts most devices of a fleet share (os, release, arch, agent version, runtime), one string
 * each for all the nodes that report them: a decoded hello holds its own copy of each, some 30
 * bytes per string longer than V8 shares by itself, on every node record. At most
 * MAX_INTERNED_FACTS distinct texts; past that, texts are kept as they come.
 */
const MAX_INTERNED_FACTS = 4096;
const internedFactTexts = new Map<string, string>();

function interned(text: string): string {
  const known = internedFactTexts.get(text);
  if (known !== undefined) return known;
  if (internedFactTexts.size < MAX_INTERNED_FACTS) internedFactTexts.set(text, text);
  return text;
}

/** The same facts, with the shared texts interned; in the schema's key order (it allows no others). */
export function internedFacts(f: NodeFacts): NodeFacts {
  return {
    hostname: f.hostname,
    os: interned(f.os),
    osRelease: interned(f.osRelease),
    arch: interned(f.arch),
    cpus: f.cpus,
    memoryBytes: f.memoryBytes,
    diskBytes: f.diskBytes,
    diskFreeBytes: f.diskFreeBytes,
    agentVersion: interned(f.agentVersion),
    runtime: interned(f.runtime),
  };
}

/**
 * Label sets, one frozen object for all the nodes that have the same one (most nodes of a fleet
 * share a few: none, or their site's): an object of its own costs each node record some 60
 * bytes. At most MAX_INTERNED_LABEL_SETS sets of at most MAX_INTERNED_LABELS_TEXT characters as
 * JSON; others are kept as they come. Keyed by their JSON, key order included, so that a node's
 * labels read back in the order they were given.
 */
const MAX_INTERNED_LABEL_SETS = 1024;
const MAX_INTERNED_LABELS_TEXT = 1024;
const labelSets = new Map<string, Record<string, string>>();

export function internedLabels(labels: Record<string, string>): Record<string, string> {
  const key = JSON.stringify(labels);
  const known = labelSets.get(key);
  if (known !== undefined) return known;
  if (labelSets.size >= MAX_INTERNED_LABEL_SETS || key.length > MAX_INTERNED_LABELS_TEXT) return labels;
  const shared = Object.freeze({ ...labels });
  labelSets.set(key, shared);
  return shared;
}

/**
 * A node record read back from disk with its labels, fact texts and empty target's hash shared as at a join (the hello
 * of a device whose facts did not change leaves them as read). A record not of the usual shape (an
 * older hub's) keeps what it has.
 */
export function withSharedParts(node: NodeRecord): NodeRecord {
  const labels = isPlainObject(node.labels) ? internedLabels(node.labels) : node.labels;
  const facts = isPlainObject(node.facts) && hasFactTexts(node.facts) ? internedFacts(node.facts) : node.facts;
  // Strings compare by content: whether the hash is the shared one cannot be told, so a record
  // with the empty target's hash is always made again (once, at open).
  const emptyTarget = node.targetHash === EMPTY_TARGET_HASH;
  if (labels === node.labels && facts === node.facts && !emptyTarget) return node;
  return { ...node, labels, facts, targetHash: emptyTarget ? EMPTY_TARGET_HASH : node.targetHash };
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const FACT_TEXTS = ['hostname', 'os', 'osRelease', 'arch', 'agentVersion', 'runtime'] as const;
/** Whether every text internedFacts reads is there and a string. */
function hasFactTexts(facts: object): boolean {
  return FACT_TEXTS.every((k) => typeof (facts as Record<string, unknown>)[k] === 'string');
}
