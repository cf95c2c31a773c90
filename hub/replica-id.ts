import { randomFillSync } from 'node:crypto';

/** Random bytes per replica id: 40 bits, ten hex digits. */
const ID_BYTES = 5;
/** Ids per refill of the pool: one system call for many ids, not one each. */
const IDS_PER_REFILL = 1024;

const pool = Buffer.alloc(ID_BYTES * IDS_PER_REFILL);
let next = pool.length;

/**
 * A new replica id: the service's name, a dot, ten random hex digits. A failover makes thousands
 * at once, and a synchronous randomBytes call per id took a quarter of a second of the hub's pass
 * for 10,000 of them; the bytes come from a pool refilled a thousand ids at a time.
 */
export function newReplicaId(service: string): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const hex = pool.toString('hex', next, next + ID_BYTES);
  next += ID_BYTES;
  return `${service}.${hex}`;
}

/** The service a replica id belongs to (ids are `<service>.<ten hex digits>`); null: no replica id of ours. */
export function serviceOfReplicaId(replicaId: string): string | null {
  const dot = replicaId.length - ID_BYTES * 2 - 1;
  return dot > 0 && replicaId[dot] === '.' && /^[0-9a-f]+$/.test(replicaId.slice(dot + 1)) ? replicaId.slice(0, dot) : null;
}
