/**
 * Bundles the agent (dist/agent/main.js, as tsc wrote it) into one file with every dependency
 * inside: dist/agent/tether-agent.js, plus its SHA-256 in tether-agent.js.sha256. The hub serves
 * both to install.sh, so a device needs Node.js and nothing else: no checkout, no npm, no registry.
 * One file also loads faster and holds less memory than the same libraries loaded from node_modules,
 * and the parts of them the agent never uses stay out (unused-dependencies.mjs).
 *
 * `--outfile FILE` writes elsewhere (tests); the checksum file goes beside it.
 */
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { unusedDependencies } from './unused-dependencies.mjs';

const { values } = parseArgs({ options: { entry: { type: 'string' }, outfile: { type: 'string' } }, strict: true });
const ENTRY = values.entry ?? 'dist/agent/main.js';
const OUT = values.outfile ?? 'dist/agent/tether-agent.js';
// CommonJS dependencies call require() and read __dirname; an ES module bundle has neither.
const BANNER = [
  "import { createRequire as __bundleRequire } from 'node:module';",
  "import { fileURLToPath as __bundleFileUrlToPath } from 'node:url';",
  "import { dirname as __bundleDirname } from 'node:path';",
  'const require = __bundleRequire(import.meta.url);',
  'const __filename = __bundleFileUrlToPath(import.meta.url);',
  'const __dirname = __bundleDirname(__filename);',
].join(' ');

await build({
  entryPoints: [ENTRY],
  outfile: OUT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: BANNER },
  // Optional native speed-ups that their libraries load inside try/catch: absent on a device is fine.
  external: ['*.node', 'bufferutil', 'utf-8-validate', 'cpu-features', 'osx-temperature-sensor'],
  plugins: [unusedDependencies()],
  // Installed alone on a device, the bundle has no package.json to read its version from.
  define: { __TETHER_VERSION__: JSON.stringify(JSON.parse(readFileSync('package.json', 'utf8')).version) },
  logLevel: 'warning',
});
chmodSync(OUT, 0o755);
const sha256 = createHash('sha256').update(readFileSync(OUT)).digest('hex');
// The format sha256sum -c reads: "<hex>  <file name>".
writeFileSync(`${OUT}.sha256`, `${sha256}  ${path.basename(OUT)}\n`);
