/**
 * Starting the hub as operators do: through bin/tether-hub (the `tether-hub` command), which sets
 * the C allocator up before node starts. The scripts that start a hub (npm start, the benchmarks)
 * use this, so what they run and measure is what an operator runs.
 */
import path from 'node:path';

export interface HubLaunch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** `root` is the checkout; `env` the hub's environment. This process's node goes first on PATH: the launcher runs that one. */
export function hubLaunch(root: string, args: string[], env: NodeJS.ProcessEnv = process.env): HubLaunch {
  const PATH = [path.dirname(process.execPath), env.PATH].filter(Boolean).join(path.delimiter);
  return { command: path.join(root, 'bin', 'tether-hub'), args, env: { ...env, PATH } };
}
