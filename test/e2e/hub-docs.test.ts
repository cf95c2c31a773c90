/**
 * The API reference from the hub program as it ships (one bundled file): the page's files are
 * found outside the bundle, in @fastify/swagger-ui's own directory, and nothing comes from a CDN.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHub, stopProgram, type HubProc } from '../helpers/processes.js';

let dir = '';
let hub: HubProc;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hub-docs-'));
  hub = await startHub({ dataDir: path.join(dir, 'hub') });
});
afterAll(async () => {
  await stopProgram(hub);
  await rm(dir, { recursive: true, force: true });
});

it('serves /openapi.json and the /docs page with every file it loads, without a token', async () => {
  const doc = (await (await fetch(`${hub.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
  expect(doc.openapi).toMatch(/^3\./);
  expect(Object.keys(doc.paths)).toContain('/v1/services/{name}');
  const page = await fetch(`${hub.url}/docs/`);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1]!, `${hub.url}/docs/`).href);
  expect(assets.length).toBeGreaterThanOrEqual(4);
  for (const asset of assets) {
    const res = await fetch(asset);
    expect(res.status, asset).toBe(200);
    expect((await res.arrayBuffer()).byteLength, asset).toBeGreaterThan(0);
  }
});
