import net from 'node:net';
import { HandshakeLoad } from './handshake-load.js';

/**
 * Who may start a handshake (upgrade to hello) while the hub holds a bounded number of them.
 *
 * The pool exists so that a reconnect storm is admitted a slice at a time. Bounded only as a
 * whole, it was one client's to take: 300 upgrades held open without hello under one credential
 * turned every other agent away for as long as they were held. So, beyond the pool's bound:
 * - one handshake per node: a newer upgrade of the same node ends the older pending one (its agent
 *   gave up on it, or someone else holds the credential; either way the newest attempt is the one
 *   to serve), so a credential never holds more than one slot;
 * - a bound per remote address (an IPv6 /64 counts as one address, as a device usually has a
 *   whole one), so that one device with many credentials cannot take the pool either. It is a
 *   large share of the pool, not one: many agents may sit behind one NAT address and must still
 *   get in quickly after a hub restart.
 * Only authenticated upgrades reach this; a refused credential never takes a slot.
 */
export interface AdmissionLimits {
  /** Handshakes in progress at once. */
  maxPending: number;
  /** Handshakes in progress at once from one remote address (or IPv6 /64). */
  maxPendingPerAddress: number;
}

/**
 * The default per-address bound: three quarters of the pool, so one address always leaves a
 * quarter to the rest. Half was tried: a fleet of thousands behind one address then met twice
 * the 503s connecting, while a quarter of the pool (64 of 256) already lets other agents in
 * within milliseconds of a flood (bench/robustness/handshake-flood.ts).
 */
export function defaultPerAddressLimit(maxPending: number): number {
  return Math.max(1, Math.floor((maxPending * 3) / 4));
}

/** One admitted handshake's slot. */
export class HandshakeTicket {
  released = false;
  /** Ends this handshake (a newer one of the same node was admitted, or the hub is closing); set by the gateway. */
  end: ((why: 'superseded' | 'closing') => void) | null = null;
  constructor(
    readonly nodeId: string,
    readonly addressKey: string,
    private readonly admission: HandshakeAdmission,
  ) {}

  /** Frees the slot (at hello or when the connection closes); idempotent. */
  release(): void {
    this.admission.release(this);
  }
}

export type Admission =
  | { ok: true; ticket: HandshakeTicket; superseded: boolean }
  | { ok: false; reason: 'busy' }
  /** `retryAfterS` sized by that address's own refusals (see HandshakeLoad). */
  | { ok: false; reason: 'address_busy'; retryAfterS: number };

/** What the admission keeps about an address while it holds handshakes (and only then). */
interface AddressEntry {
  pending: number;
  load: HandshakeLoad;
}

export class HandshakeAdmission {
  private pending = 0;
  /** At most one entry per pending handshake, so bounded by maxPending like the rest. */
  private readonly byNode = new Map<string, HandshakeTicket>();
  /** Addresses with handshakes pending: bounded by maxPending too. */
  private readonly byAddress = new Map<string, AddressEntry>();
  /** Pending handshakes ended by a newer one of the same node. */
  superseded = 0;
  /** Upgrades refused because their address held its share of the pool. */
  refusedAddressBusy = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  get pendingCount(): number {
    return this.pending;
  }

  /** Pending handshakes from one remote address (or its /64). */
  pendingFrom(remoteAddress: string | undefined): number {
    return this.byAddress.get(addressKey(remoteAddress))?.pending ?? 0;
  }

  /**
   * Admits an authenticated upgrade, or refuses it. A refusal changes nothing: a node's older
   * pending handshake is ended only once its newer one has been admitted (otherwise anyone who can
   * make a newer upgrade fail could end a node's handshakes at will).
   */
  admit(nodeId: string, remoteAddress: string | undefined): Admission {
    const previous = this.byNode.get(nodeId);
    const key = addressKey(remoteAddress);
    const entry = this.byAddress.get(key);
    // The newer handshake takes the older one's slot, in the pool and in its address if the same.
    const fromAddress = (entry?.pending ?? 0) - (previous?.addressKey === key ? 1 : 0);
    const pending = this.pending - (previous ? 1 : 0);
    // The address bound first: refusals of one greedy address must not count as the whole hub
    // being busy (which would lengthen every other agent's Retry-After). A bound as large as the
    // pool is no bound of its own: the pool is full.
    if (fromAddress >= this.limits.maxPendingPerAddress && this.limits.maxPendingPerAddress < this.limits.maxPending) {
      this.refusedAddressBusy++;
      // An address at its bound holds handshakes, so its entry exists.
      const now = this.nowMs();
      entry!.load.count('refused', now);
      return { ok: false, reason: 'address_busy', retryAfterS: entry!.load.retryAfterS(now) };
    }
    if (pending >= this.limits.maxPending) return { ok: false, reason: 'busy' };
    let superseded = false;
    if (previous) {
      this.release(previous);
      this.superseded++;
      superseded = true;
      previous.end?.('superseded');
    }
    // Looked up again: releasing the older handshake may have emptied and forgotten the address.
    let admitted = this.byAddress.get(key);
    if (!admitted) {
      admitted = { pending: 0, load: new HandshakeLoad() };
      this.byAddress.set(key, admitted);
    }
    admitted.pending++;
    admitted.load.count('admitted', this.nowMs());
    const ticket = new HandshakeTicket(nodeId, key, this);
    this.pending++;
    this.byNode.set(nodeId, ticket);
    return { ok: true, ticket, superseded };
  }

  /** Ends every pending handshake: the hub is closing. */
  endAll(): void {
    for (const ticket of [...this.byNode.values()]) {
      this.release(ticket);
      ticket.end?.('closing');
    }
  }

  release(ticket: HandshakeTicket): void {
    if (ticket.released) return;
    ticket.released = true;
    this.pending--;
    if (this.byNode.get(ticket.nodeId) === ticket) this.byNode.delete(ticket.nodeId);
    const entry = this.byAddress.get(ticket.addressKey);
    if (entry && --entry.pending <= 0) this.byAddress.delete(ticket.addressKey);
  }
}

/**
 * The key a remote address is bounded under: an IPv4 address as it is (also when IPv4-mapped),
 * an IPv6 address by its /64 prefix.
 */
export function addressKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped) return mapped[1]!;
  if (!net.isIPv6(remoteAddress)) return remoteAddress;
  const groups = expandIPv6(remoteAddress.split('%')[0]!);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : remoteAddress;
}

/** The eight 16-bit groups of an IPv6 address, as lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] | null {
  let text = address.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16).toString(16));
}
