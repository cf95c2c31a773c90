/**
 * What the CLI reads and writes besides the network: the program's own streams and environment in
 * main.ts, buffers in tests, so that a test runs a command in process and reads what it printed.
 */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Read by `apply -f -`. */
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  /** Where `~/.config/tether/config.json` is looked for. */
  homeDir: string;
  /** Ends a followed stream (`logs -f`, `events -f`): Ctrl-C in the program, the test's end in tests. */
  signal?: AbortSignal;
}
