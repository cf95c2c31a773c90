import { Command, CommanderError, Option } from 'commander';
import { TETHER_VERSION } from '../shared/version.js';
import { Aborted, HubClient } from './client.js';
import { CliError, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './cli-error.js';
import { resolveConnection, type GlobalFlags } from './config.js';
import type { CommandContext } from './command-context.js';
import type { CliIo } from './io.js';
import { registerApply } from './commands/apply.js';
import { registerEvents } from './commands/events.js';
import { registerJoinToken } from './commands/join-token.js';
import { registerLogin } from './commands/login.js';
import { registerLogs } from './commands/logs.js';
import { registerNodes } from './commands/nodes.js';
import { registerServices } from './commands/services.js';

function buildProgram(ctx: CommandContext): Command {
  const output = {
    writeOut: (s: string) => ctx.io.stdout.write(s),
    writeErr: (s: string) => ctx.io.stderr.write(s),
    // One line, as every other error: commander puts its suggestion on a line of its own.
    outputError: (s: string, write: (s: string) => void) => write(`tether: ${s.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')}\n`),
  };
  const program = new Command('tether')
    .description("Tether's command line: the hub's API for operators")
    .version(TETHER_VERSION, '-V, --version')
    .option('--hub <url>', 'the hub (or TETHER_HUB, or the one tether login saved)')
    .option('--token <token>', 'API token (or TETHER_TOKEN, or the one tether login saved)')
    .option('--config <file>', 'config file (or TETHER_CONFIG; default ~/.config/tether/config.json)')
    .option('--ca-cert <file>', "trust the hub's certificate through this CA (PEM; or TETHER_CA_CERT)")
    .option('--ca-fingerprint <sha256>', "trust the hub's own CA with this fingerprint, as agents pin it (or TETHER_CA_FINGERPRINT)")
    .addOption(new Option('--json', 'print JSON instead of tables'))
    .exitOverride()
    .configureOutput(output);
  registerLogin(program, ctx);
  registerNodes(program, ctx);
  registerServices(program, ctx);
  registerApply(program, ctx);
  registerLogs(program, ctx);
  registerEvents(program, ctx);
  registerJoinToken(program, ctx);
  // Subcommands inherit exitOverride and output only when made after these calls: set them on every one.
  const all = (command: Command): Command[] => [command, ...command.commands.flatMap(all)];
  for (const command of all(program)) {
    command.exitOverride().configureOutput(output);
  }
  return program;
}

/**
 * Runs one command line (without `node` and the script) and answers the exit code: 0 done, 1
 * failed (the hub refused, could not be reached, a file did not parse), 2 usage (an unknown
 * command or flag, a missing argument). Never exits the process: main.ts does.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const ctx: CommandContext = {
    io,
    flags: (command) => command.optsWithGlobals<GlobalFlags>(),
    client: async (command) => HubClient.connect(await resolveConnection(command.optsWithGlobals<GlobalFlags>(), io), io.signal),
    nowMs: () => Date.now(),
  };
  try {
    await buildProgram(ctx).parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for (--help, `tether help`) and --version exit 0; commander has printed what
      // was wrong otherwise (or the help, for a command group given no subcommand).
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof Aborted) return EXIT_OK;
    if (error instanceof CliError) {
      io.stderr.write(`tether: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr.write(`tether: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT_FAILED;
  }
}
