import { describe, expect, it } from 'vitest';
import { addressKey, defaultPerAddressLimit, HandshakeAdmission } from '../../hub/agents/handshake-admission.js';

describe('handshake admission', () => {
  it('keeps one pending handshake per node: a newer one ends the older and takes its slot', () => {
    const admission = new HandshakeAdmission({ maxPending: 2, maxPendingPerAddress: 2 });
    const ended: string[] = [];
    const first = admission.admit('n1', '10.0.0.1');
    if (!first.ok) throw new Error('refused');
    first.ticket.end = (why) => ended.push(why);
    const second = admission.admit('n1', '10.0.0.1');
    expect(second).toMatchObject({ ok: true, superseded: true });
    expect(ended).toEqual(['superseded']);
    expect(admission.pendingCount).toBe(1);
    expect(admission.superseded).toBe(1);
    // Releasing the superseded ticket late (its socket closing) frees nothing twice.
    first.ticket.release();
    expect(admission.pendingCount).toBe(1);
    expect(admission.admit('n2', '10.0.0.2').ok).toBe(true);
  });

  it('a full pool still admits a newer handshake of a node already pending', () => {
    const admission = new HandshakeAdmission({ maxPending: 1, maxPendingPerAddress: 1 });
    expect(admission.admit('n1', '10.0.0.1').ok).toBe(true);
    expect(admission.admit('n2', '10.0.0.2')).toEqual({ ok: false, reason: 'busy' });
    expect(admission.admit('n1', '10.0.0.1').ok).toBe(true);
  });

  it('a newer upgrade of a node that is then refused leaves its older handshake alone', () => {
    const admission = new HandshakeAdmission({ maxPending: 3, maxPendingPerAddress: 1 });
    const ended: string[] = [];
    const first = admission.admit('n1', '10.0.0.1');
    if (!first.ok) throw new Error('refused');
    first.ticket.end = (why) => ended.push(why);
    expect(admission.admit('x', '10.0.0.2').ok).toBe(true);
    // From an address that holds its share: refused, and the older handshake goes on.
    expect(admission.admit('n1', '10.0.0.2')).toMatchObject({ ok: false, reason: 'address_busy' });
    expect(ended).toEqual([]);
    expect(first.ticket.released).toBe(false);
    expect(admission.superseded).toBe(0);
    expect(admission.pendingFrom('10.0.0.1')).toBe(1);
    expect(admission.admit('y', '10.0.0.3').ok).toBe(true);
    // From its own address it takes over its own slot, with the address and the pool full.
    expect(admission.admit('n1', '10.0.0.1')).toMatchObject({ ok: true, superseded: true });
    expect(ended).toEqual(['superseded']);
    expect(admission.pendingCount).toBe(3);
  });

  it("sizes an address's Retry-After by that address's refusals, leaving other addresses' alone", () => {
    const clock = { now: 0 };
    const admission = new HandshakeAdmission({ maxPending: 8, maxPendingPerAddress: 2 }, () => clock.now);
    expect(admission.admit('a1', '10.0.0.1').ok).toBe(true);
    expect(admission.admit('a2', '10.0.0.1').ok).toBe(true);
    expect(admission.admit('b1', '10.0.0.2').ok).toBe(true);
    expect(admission.admit('b2', '10.0.0.2').ok).toBe(true);
    const refusal = (nodeId: string, address: string) => {
      const r = admission.admit(nodeId, address);
      if (r.ok || r.reason !== 'address_busy') throw new Error(`expected address_busy, got ${JSON.stringify(r)}`);
      return r.retryAfterS;
    };
    expect(refusal('b3', '10.0.0.2')).toBe(1);
    let last = 0;
    for (let i = 0; i < 500; i++) {
      clock.now += 1;
      last = refusal(`a-more-${i}`, '10.0.0.1');
    }
    // 500 refused in half a second, at the (assumed) 100 admitted a second.
    expect(last).toBe(5);
    expect(refusal('b3', '10.0.0.2')).toBe(1);
    // The estimate goes stale with the address's load.
    clock.now += 2_500;
    expect(refusal('a-later', '10.0.0.1')).toBe(1);
  });

  it('bounds each address to its share, refused as the address, not as the hub, being busy', () => {
    const admission = new HandshakeAdmission({ maxPending: 4, maxPendingPerAddress: 2 });
    expect(admission.admit('a1', '10.0.0.1').ok).toBe(true);
    expect(admission.admit('a2', '10.0.0.1').ok).toBe(true);
    expect(admission.admit('a3', '10.0.0.1')).toMatchObject({ ok: false, reason: 'address_busy' });
    expect(admission.admit('b1', '10.0.0.2').ok).toBe(true);
    expect(admission.admit('b2', '10.0.0.2').ok).toBe(true);
    expect(admission.admit('c1', '10.0.0.3')).toEqual({ ok: false, reason: 'busy' });
    expect(admission.refusedAddressBusy).toBe(1);
    expect(admission.pendingFrom('10.0.0.1')).toBe(2);
  });

  it('frees an address share on release, and forgets addresses with nothing pending', () => {
    const admission = new HandshakeAdmission({ maxPending: 4, maxPendingPerAddress: 1 });
    const a = admission.admit('a1', '10.0.0.1');
    if (!a.ok) throw new Error('refused');
    expect(admission.admit('a2', '10.0.0.1').ok).toBe(false);
    a.ticket.release();
    a.ticket.release();
    expect(admission.pendingFrom('10.0.0.1')).toBe(0);
    expect(admission.pendingCount).toBe(0);
    expect(admission.admit('a2', '10.0.0.1').ok).toBe(true);
  });

  it('ends every pending handshake when the hub closes', () => {
    const admission = new HandshakeAdmission({ maxPending: 4, maxPendingPerAddress: 4 });
    const ended: string[] = [];
    for (const node of ['a', 'b', 'c']) {
      const r = admission.admit(node, '10.0.0.1');
      if (r.ok) r.ticket.end = (why) => ended.push(`${node}:${why}`);
    }
    admission.endAll();
    expect(ended.sort()).toEqual(['a:closing', 'b:closing', 'c:closing']);
    expect(admission.pendingCount).toBe(0);
  });

  it('takes three quarters of the pool per address by default, at least one', () => {
    expect(defaultPerAddressLimit(256)).toBe(192);
    expect(defaultPerAddressLimit(4)).toBe(3);
    expect(defaultPerAddressLimit(2)).toBe(1);
    expect(defaultPerAddressLimit(1)).toBe(1);
  });

  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:0:0:0:9', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, ''],
  ])('bounds %s under %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });
});
