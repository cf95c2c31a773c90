import { describe, expect, it } from 'vitest';
import { startBanner, type StartBannerInput } from '../../hub/start-banner.js';

const base: StartBannerInput = {
  url: 'http://127.0.0.1:7070',
  dataDir: '/var/lib/tether-hub',
  adminToken: 'tat_secret-admin-token',
  adminTokenFile: '/var/lib/tether-hub/admin-token',
  adminTokenCreated: true,
  toTerminal: true,
};

describe('the start banner', () => {
  it('shows the admin token once: when it was just made and a person is watching', () => {
    const text = startBanner(base);
    expect(text).toContain('admin token:  tat_secret-admin-token');
    expect(text).toContain('shown this once');
  });

  it.each([
    ['made now, output to a log', { toTerminal: false }],
    ['kept from before, output to a terminal', { adminTokenCreated: false }],
    ['kept from before, output to a log', { adminTokenCreated: false, toTerminal: false }],
  ])('names only the token file when %s', (_what, change) => {
    const text = startBanner({ ...base, ...change });
    expect(text).not.toContain('tat_');
    expect(text).toContain('admin token:  in /var/lib/tether-hub/admin-token');
    expect(text).toContain('$(cat /var/lib/tether-hub/admin-token)');
  });

  it('makes no join token; it says how to ask for one', () => {
    const text = startBanner({ ...base, toTerminal: false });
    expect(text).not.toMatch(/tjt_/);
    expect(text).toContain('POST');
    expect(text).toContain('/v1/join-tokens');
  });
});
