import { afterEach, expect, it, vi } from 'vitest';
import { HelloRenewal } from '../../agent/hello-renewal.js';

let renewal: HelloRenewal | null = null;
afterEach(() => {
  renewal?.stop();
  renewal = null;
});

it('renews at once, then at most once per interval, and only while the hub has stale facts', async () => {
  let stale = true;
  let renewals = 0;
  renewal = new HelloRenewal({
    isStale: () => stale,
    renew: () => {
      renewals++;
      stale = false;
      return true;
    },
    minIntervalMs: 200,
  });
  renewal.request();
  expect(renewals).toBe(1);
  // Stale again at once (an engine that flaps): held back until the interval is up.
  stale = true;
  renewal.request();
  renewal.request();
  expect(renewals).toBe(1);
  await vi.waitFor(() => expect(renewals).toBe(2), { timeout: 2_000, interval: 10 });
  // A hello said meanwhile for another reason told the hub: nothing to renew when the interval is up.
  stale = true;
  renewal.request();
  stale = false;
  await new Promise((resolve) => setTimeout(resolve, 400));
  expect(renewals).toBe(2);
});

it('renews nothing after stop()', async () => {
  let renewals = 0;
  renewal = new HelloRenewal({ isStale: () => true, renew: () => (renewals++, true), minIntervalMs: 50 });
  renewal.request();
  renewal.request();
  renewal.stop();
  renewal.request();
  await new Promise((resolve) => setTimeout(resolve, 150));
  expect(renewals).toBe(1);
});
