/**
 * Fleet disruption: most of the fleet away at once. When more than a set share of the nodes
 * drops off together, the likely cause is the hub's own network, not the devices; declaring them
 * lost would restart every replica on whichever node comes back first. Like the full-disruption
 * mode of Kubernetes' node lifecycle controller (unhealthyZoneThreshold 0.55), the failure
 * detector then withholds lost declarations until the fleet is back.
 */

/** Share of the counted nodes that must be away, strictly more than, for a disruption. */
export const DEFAULT_DISRUPTION_SHARE = 0.55;

/**
 * Fewer away nodes than this is a disruption only when it is the whole fleet. Below it the share
 * says little: two dead nodes of three must still fail over to the third, while with both nodes
 * of two away there is nowhere to move to anyway (Kubernetes counts "more than 2 not ready" too).
 * A fleet of one node never is: its node is either all of it or none of it.
 */
export const DISRUPTION_MIN_AWAY_NODES = 3;

/**
 * Whether `awayNodes` of `countedNodes` is a fleet disruption. Pure. `share` in (0, 1]; 1 turns
 * the mode off (more than the whole fleet is never away).
 */
export function isFleetDisruption(awayNodes: number, countedNodes: number, share: number): boolean {
  if (countedNodes < 2) return false;
  if (awayNodes < Math.min(DISRUPTION_MIN_AWAY_NODES, countedNodes)) return false;
  return awayNodes > share * countedNodes;
}
