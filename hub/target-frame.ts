import { createHash } from 'node:crypto';
import { encodeFrame } from '../shared/codec.js';
import type { AssignedReplica, HubFrame, TargetFrame, TargetValue } from '../shared/protocol.js';

/**
 * A target frame's JSON text, built by concatenation: the same bytes as `encodeFrame` (that is,
 * JSON.stringify) of `{ type: 'target', generation, replicas, values?, purgeVolumes? }`, key order included, but with
 * each replica's container taken from `containerJson` instead of encoded again. Every replica of
 * a service carries the same container, so a fleet's targets would otherwise encode one container
 * once per replica. `containerJson` must give JSON.stringify(replica.container) exactly.
 */
export function encodeTargetFrame(
  generation: number,
  replicas: readonly AssignedReplica[],
  containerJson: (replica: AssignedReplica) => string,
  values?: readonly TargetValue[],
  purgeVolumes?: readonly string[],
): string {
  let text = `{"type":"target","generation":${JSON.stringify(generation)},"replicas":[`;
  for (let i = 0; i < replicas.length; i++) {
    const r = replicas[i]!;
    if (i > 0) text += ',';
    text += `{"replicaId":${JSON.stringify(r.replicaId)},"service":${JSON.stringify(r.service)},"specHash":${JSON.stringify(r.specHash)},"container":${containerJson(r)}}`;
  }
  // Last, in the order JSON.stringify puts a frame's `values` and `purgeVolumes` after its replicas.
  text += ']';
  if (values !== undefined) text += `,"values":${JSON.stringify(values)}`;
  if (purgeVolumes !== undefined) text += `,"purgeVolumes":${JSON.stringify(purgeVolumes)}`;
  return `${text}}`;
}

/**
 * The text a node's target hash is the sha256 of: `replicaId\0specHash\0` per replica, in the
 * target's order, each followed by its registry credentials' JSON when it has any (outside the
 * spec hash, yet they must reach the agent when they change). Hashed in one update: the digest is
 * the one the per-replica updates gave, so hashes stored in node records stay valid.
 */
export function targetHashText(replicas: readonly AssignedReplica[], authJson: (replica: AssignedReplica) => string): string {
  let text = '';
  for (const r of replicas) text += `${r.replicaId}\0${r.specHash}\0${authJson(r)}`;
  return text;
}

/** The empty target's hash, one string for every node without work (see targetHash). */
export const EMPTY_TARGET_HASH = createHash('sha256').update('').digest().toString('hex', 0, 16);

/**
 * A node's target hash: the first 16 bytes of the text's sha256, as text of their own (a slice of
 * the whole digest's text would keep all of it alive in every node record, some 55 bytes more).
 * The empty target's is one string for all the nodes without work (a node just joined, a spare):
 * each would otherwise hold its own copy of the same 48 bytes.
 */
export function targetHash(text: string): string {
  if (text === '') return EMPTY_TARGET_HASH;
  return createHash('sha256').update(text).digest().toString('hex', 0, 16);
}

/**
 * Target frames whose text was built already (see encodeTargetFrame). Weak: the text goes with its
 * frame. A frame must not change once its text is set.
 */
const builtTexts = new WeakMap<TargetFrame, string>();

/** Sets `text` as what `frameText` gives for `frame`: it must equal encodeFrame(frame). */
export function withText(frame: TargetFrame, text: string): TargetFrame {
  builtTexts.set(frame, text);
  return frame;
}

/** What the hub sends for a frame: the text built with it, else the frame encoded now. */
export function frameText(frame: HubFrame): string {
  return (frame.type === 'target' ? builtTexts.get(frame) : undefined) ?? encodeFrame(frame);
}
