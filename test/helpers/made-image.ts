/**
 * Images of their own for tests that need one the engine or registry does not share with others:
 * made by running `shell` in a container of `base` and committing it (a layer of its own), and,
 * for a pull to be real, pushed to the test registry and removed from the engine.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export async function makeImage(base: string, image: string, shell: string): Promise<void> {
  const name = `tether-made-image-${randomUUID().slice(0, 8)}`;
  await run('docker', ['run', '--name', name, base, 'sh', '-c', shell]);
  try {
    await run('docker', ['commit', name, image]);
  } finally {
    await run('docker', ['rm', '-f', name]);
  }
}

/** Made as makeImage does, pushed to its registry, and gone from the engine: a pull of it downloads its layer. */
export async function makeRegistryOnlyImage(base: string, image: string, shell: string): Promise<void> {
  await makeImage(base, image, shell);
  await run('docker', ['push', '-q', image]);
  await run('docker', ['rmi', image]);
}
