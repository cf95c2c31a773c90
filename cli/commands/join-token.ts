import type { Command } from 'commander';
import { printJson } from '../output.js';
import type { CommandContext } from '../command-context.js';
import { collect, wholeNumber } from '../option-values.js';
import { labelPairs } from '../selector.js';

interface IssuedToken {
  id: string;
  token: string;
  expiresAt: string;
  uses?: number | null;
  labels?: Record<string, string>;
  caFingerprint?: string;
  /** The one-liner that installs and joins an agent, when the hub serves the installer. */
  installCommand?: string;
}

/** Without the hub's one-liner: the agent's own command line, with the CA to pin. */
function agentCommand(hub: URL, issued: IssuedToken): string {
  const pin = issued.caFingerprint ? ` --ca-fingerprint ${issued.caFingerprint}` : '';
  return `tether-agent --hub ${hub.origin} --join-token ${issued.token}${pin} --data-dir /var/lib/tether-agent`;
}

export function registerJoinToken(program: Command, ctx: CommandContext): void {
  program
    .command('join-token')
    .description('a token for new devices to join with, and the command to run on them (admin)')
    .option('--ttl <duration>', 'how long it joins, e.g. 90m, 24h (hub default 24h)')
    .option('--uses <n>', 'how many devices may join with it (default: any until it expires)', wholeNumber(1, 100_000))
    .option('--label <key=value>', 'a label every node that joins with it gets (repeatable)', collect, [])
    .action(async (options: { ttl?: string; uses?: number; label: string[] }, command: Command) => {
      const labels = labelPairs(options.label, '--label');
      const client = await ctx.client(command);
      const issued = await client.call<IssuedToken>('POST', '/v1/join-tokens', {
        body: {
          ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
          ...(options.uses !== undefined ? { uses: options.uses } : {}),
          ...(options.label.length > 0 ? { labels } : {}),
        },
      });
      if (ctx.flags(command).json) return printJson(ctx.io, issued);
      const uses = typeof issued.uses === 'number' ? `, ${issued.uses} use(s)` : '';
      ctx.io.stdout.write(`join token ${issued.id} (expires ${issued.expiresAt}${uses}); on the device, run:\n\n`);
      ctx.io.stdout.write(`  ${issued.installCommand ?? agentCommand(client.hub, issued)}\n`);
    });
}
