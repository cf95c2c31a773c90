/**
 * Bundles the hub's entry (dist/hub/main.js, as tsc wrote it) into one file in its place. Loading
 * the hub's modules one by one (fastify, typebox, pino, prom-client and ours: several hundred
 * files) took most of a second of every hub start; one file loads in a fraction of that. The
 * other dist files stay as tsc wrote them (tests, benchmarks and the agent import them).
 */
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const ENTRY = 'dist/hub/main.js';
// CommonJS dependencies call require(); an ES module bundle has none of its own.
const BANNER = "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);";

if (readFileSync(ENTRY, 'utf8').includes(BANNER)) {
  // Bundled already (the script run twice without tsc between): a second pass would declare require twice.
  process.exit(0);
}
await build({
  entryPoints: [ENTRY],
  outfile: ENTRY,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: BANNER },
  // Back to the TypeScript sources through tsc's maps: stack traces with --enable-source-maps.
  sourcemap: true,
  logLevel: 'warning',
});
