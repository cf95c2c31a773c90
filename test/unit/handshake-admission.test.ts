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

  it('bounds each address to its share, refused as the address, not as the hub, being busy', () => {
    const admission = new HandshakeAdmission({ maxPending: 4, maxPendingPerAddress: 2 });
    expect(admission.admit('a1', '10.0.0.1').ok).toBe(true);
    expect(admission.admit('a2', '10.0.0.1').ok).toBe(true);
    expect(admission.admit('a3', '10.0.0.1')).toEqual({ ok: false, reason: 'address_busy' });
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
