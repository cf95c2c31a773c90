import type { Command } from 'commander';
import { HubClient } from '../client.js';
import { UsageError } from '../cli-error.js';
import { configPath, fingerprintFlag, hubUrl, readCaFile, saveConfig, type SavedConfig } from '../config.js';
import { pinCa } from '../pinned-ca.js';
import type { CommandContext } from '../command-context.js';

/**
 * `tether login HUB --token T`: checks that the hub takes the token, then saves hub, token and
 * the CA it was trusted with (0600), so later commands need no flags.
 */
export function registerLogin(program: Command, ctx: CommandContext): void {
  program
    .command('login')
    .description('check a hub and token, and save them for later commands (with --ca-fingerprint or --ca-cert, the CA too)')
    .argument('<hub>', 'the hub, e.g. https://hub.example:7070')
    .action(async (hubText: string, _options: unknown, command: Command) => {
      const flags = ctx.flags(command);
      const hub = hubUrl(hubText, 'HUB');
      const token = flags.token ?? ctx.io.env.TETHER_TOKEN;
      if (!token) throw new UsageError('login needs --token TOKEN (or TETHER_TOKEN): an admin token, or an API token');
      const saved: SavedConfig = { hub: hub.origin, token };
      const caFile = flags.caCert ?? ctx.io.env.TETHER_CA_CERT;
      const fingerprintText = flags.caFingerprint ?? ctx.io.env.TETHER_CA_FINGERPRINT;
      if (caFile) saved.caCert = await readCaFile(caFile);
      else if (fingerprintText) {
        saved.caCert = await pinCa(hub, fingerprintFlag(fingerprintText, '--ca-fingerprint'));
        saved.caPinned = true;
      }
      const client = await HubClient.connect(
        { hub, token, trust: saved.caCert ? { kind: 'ca', pem: saved.caCert, checkName: saved.caPinned !== true } : { kind: 'system' } },
        ctx.io.signal,
      );
      // Any read a viewer may make proves the token; one node is the smallest answer.
      await client.call('GET', '/v1/nodes', { query: { limit: 1 } });
      const file = configPath(flags, ctx.io);
      await saveConfig(file, saved);
      if (flags.json) ctx.io.stdout.write(`${JSON.stringify({ hub: hub.origin, config: file, caPinned: saved.caPinned === true })}\n`);
      else ctx.io.stdout.write(`logged in to ${hub.origin}; saved to ${file}${saved.caCert ? " with the hub's CA" : ''}\n`);
    });
}
