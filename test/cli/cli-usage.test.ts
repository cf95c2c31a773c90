import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempHome, tether } from './cli-harness.js';

let home: Awaited<ReturnType<typeof tempHome>>;
beforeEach(async () => {
  home = await tempHome();
});
afterEach(async () => home.remove());

const run = (...argv: string[]) => tether(argv, { homeDir: home.dir, env: { TETHER_HUB: 'http://127.0.0.1:1', TETHER_TOKEN: 't' } });

describe('tether: usage errors exit 2 with one line on stderr, before any request', () => {
  it.each([
    [['bogus'], /unknown command 'bogus'/],
    [['nodes', 'bogus'], /unknown command 'bogus'/],
    [['nodes', 'ls', '--bogus'], /unknown option '--bogus'/],
    [['nodes', 'inspect'], /missing required argument 'node'/],
    [['services', 'scale', 'web'], /missing required argument 'replicas'/],
    [['services', 'scale', 'web', 'many'], /expected a whole number/],
    [['logs', 'web', '--tail', '-3'], /expected a whole number from 0 to 10000/],
    [['apply'], /required option '-f, --file <file>' not specified/],
    [['nodes', 'ls', '-l', 'zone'], /-l zone: expected key=value or key!=value/],
    [['nodes', 'ls', '-l', 'zone=a,b'], /expected key=value/],
    [['join-token', '--label', 'nokey'], /--label nokey: expected key=value/],
    [['--hub', 'ftp://x', 'nodes', 'ls'], /--hub: "ftp:\/\/x" must be an http:\/\/ or https:\/\/ address/],
    [['--ca-fingerprint', 'sha256:abc', 'nodes', 'ls'], /--ca-fingerprint: "sha256:abc" is not a CA fingerprint/],
  ])('%j', async (argv, message) => {
    const { code, stdout, stderr } = await run(...argv);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/^tether: [^\n]+\n$/);
    expect(stdout).toBe('');
  });

  it('a command group without its subcommand prints the group help and exits 2', async () => {
    const { code, stderr } = await run('nodes');
    expect(code).toBe(2);
    expect(stderr).toContain('Usage: tether nodes');
  });

  it('help for a command (tether help nodes, tether nodes --help) exits 0', async () => {
    expect((await run('help', 'nodes')).code).toBe(0);
    const nodes = await run('nodes', '--help');
    expect(nodes.code).toBe(0);
    expect(nodes.stdout).toContain('Usage: tether nodes');
  });

  it('--help exits 0 and lists every command', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    for (const command of ['login', 'nodes', 'services', 'apply', 'logs', 'events', 'join-token']) expect(stdout).toContain(command);
  });

  it('no hub anywhere (no flag, no env, no config) says where to give one', async () => {
    const { code, stderr } = await tether(['nodes', 'ls'], { homeDir: home.dir, env: {} });
    expect(code).toBe(2);
    expect(stderr).toBe('tether: no hub: give --hub URL, set TETHER_HUB, or run tether login HUB --token TOKEN\n');
  });

  it('a hub and no token says how to give one', async () => {
    const { code, stderr } = await tether(['nodes', 'ls'], { homeDir: home.dir, env: { TETHER_HUB: 'http://127.0.0.1:1' } });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^tether: no token for http:\/\/127\.0\.0\.1:1: give --token, set TETHER_TOKEN, or run tether login/);
  });

  it('an unreachable hub is one line and exit 1', async () => {
    const { code, stderr } = await run('nodes', 'ls');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^tether: cannot reach the hub at http:\/\/127\.0\.0\.1:1: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
  });
});
