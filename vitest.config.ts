import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // builds native/ (C++ tests, test backend libraries) with CMake once, before any test file
    globalSetup: ['test/native/global-setup.ts'],
    // Native passes and dataset writes are slow on 2 cores; a generous per-test limit avoids
    // flaky timeouts without hiding hangs.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
