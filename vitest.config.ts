import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // End-to-end files share one Docker engine; each uses its own ports and node ids, so two
    // at a time (one per core) is safe.
    maxWorkers: 2,
  },
});
