import { describe, expect, it } from 'vitest';
import { startBanner, type StartBannerInput } from '../../hub/start-banner.js';

const base: StartBannerInput = {
  url: 'http://127.0.0.1:7070',
  dataDir: '/var/lib/tether-hub',
  adminToken: 'tat_secret-admin-token',
  adminTokenFile: '/var/lib/tether-hub/admin-token',
  adminTokenCreated: true,
  toTerminal: true,
  caFingerprint: null,
  caFile: null,
  serverKeyPin: null,
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

  it('joins another machine with one line: the hub\'s install.sh piped into sh', () => {
    expect(startBanner(base)).toContain(
      '    curl -fsSL http://127.0.0.1:7070/install.sh | sh -s -- --hub http://127.0.0.1:7070 --join-token <token>\n',
    );
  });

  it("over HTTPS, pins the hub's key for curl and gives the agent the CA's fingerprint; curl of the API gets the CA file", () => {
    const fingerprint = `sha256:${'ab'.repeat(32)}`;
    const pin = `sha256//${'A'.repeat(43)}=`;
    const text = startBanner({ ...base, url: 'https://127.0.0.1:7070', caFingerprint: fingerprint, caFile: '/var/lib/tether-hub/tls/ca.crt', serverKeyPin: pin });
    expect(text).toContain(
      `    curl -fsSL --insecure --pinnedpubkey ${pin} https://127.0.0.1:7070/install.sh | sh -s -- --hub https://127.0.0.1:7070 --join-token <token> --ca-fingerprint ${fingerprint}\n`,
    );
    expect(text).toContain('curl --cacert /var/lib/tether-hub/tls/ca.crt -X POST');
  });

  it('has no fingerprint and no pin over plain HTTP', () => {
    expect(startBanner(base)).not.toContain('--ca-fingerprint');
    expect(startBanner(base)).not.toContain('--pinnedpubkey');
  });
});
