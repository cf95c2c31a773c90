import { parseArgs, type ParseArgsConfig } from 'node:util';
import { chooseLogFormat, LOG_FORMAT_ENV } from './log-format.js';
import { TETHER_VERSION } from './version.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** A usage error: says what is wrong and exits with status 2. */
export function usageError(program: string, message: string): never {
  process.stderr.write(`${program}: ${message}\n(see ${program} --help)\n`);
  process.exit(2);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses a program's flags strictly (every flag known, no positionals), answers --help and
 * --version itself (returning null then), and checks --log-level and --log-format (see log-format.ts).
 */
export function parseCommandLine<const O extends Options>(program: string, help: string, options: O) {
  const config = {
    options: {
      ...options,
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    strict: true,
    allowPositionals: false,
  } as const;
  let values: ReturnType<typeof parseArgs<typeof config>>['values'];
  try {
    values = parseArgs(config).values;
  } catch (error) {
    usageError(program, (error as Error).message);
  }
  // The flags every program has, typed here; callers get their own flags typed from `options`.
  const common = values as { help?: boolean; version?: boolean; 'log-level'?: string; 'log-format'?: string };
  if (common.help === true) {
    process.stdout.write(help);
    return null;
  }
  if (common.version === true) {
    process.stdout.write(`${TETHER_VERSION}\n`);
    return null;
  }
  const logLevel = common['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) usageError(program, `unknown --log-level "${logLevel}" (one of ${LOG_LEVELS.join(', ')})`);
  const logFormat = chooseLogFormat(common['log-format'], process.env[LOG_FORMAT_ENV], process.stdout.isTTY === true);
  if (!logFormat.ok) usageError(program, logFormat.error);
  return { values, logLevel, logFormat: logFormat.format };
}
