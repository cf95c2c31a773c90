import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { installCommand } from '../../hub/install-command.js';

describe('the one-line agent install', () => {
  it('pipes the hub\'s install.sh into sh with the join flags', () => {
    expect(installCommand({ hubUrl: 'http://10.0.0.5:7070', joinToken: 'tjt_abc-DEF_123', caFingerprint: null, serverKeyPin: null })).toBe(
      'curl -fsSL http://10.0.0.5:7070/install.sh | sh -s -- --hub http://10.0.0.5:7070 --join-token tjt_abc-DEF_123',
    );
  });

  it('over TLS: curl pins the server key, the installer gets the CA fingerprint', () => {
    const fingerprint = `sha256:${'0f'.repeat(32)}`;
    expect(installCommand({ hubUrl: 'https://hub:7070', joinToken: 't', caFingerprint: fingerprint, serverKeyPin: 'sha256//q+Z/9=' })).toBe(
      `curl -fsSL --insecure --pinnedpubkey sha256//q+Z/9= https://hub:7070/install.sh | sh -s -- --hub https://hub:7070 --join-token t --ca-fingerprint ${fingerprint}`,
    );
  });

  it('quotes what a shell would read otherwise, so the line says what it was given', () => {
    const command = installCommand({ hubUrl: "http://h:1/it's $HOME;`x`", joinToken: 'a b', caFingerprint: null, serverKeyPin: null });
    // The shell's own reading of the words after `sh -s --`.
    const words = execFileSync('sh', ['-c', `set -- ${command.split(' | sh -s -- ')[1]}; printf '%s\\n' "$@"`], { encoding: 'utf8' });
    expect(words.split('\n').slice(0, 4)).toEqual(['--hub', "http://h:1/it's $HOME;`x`", '--join-token', 'a b']);
  });
});
