import { defineConfig } from 'vitest/config';

// Runs only the digest recorder (test/reference/cpu-digests.ts), which npm test does not run.
export default defineConfig({ test: { include: ['test/reference/cpu-digests.ts'], testTimeout: 600_000, pool: 'forks' } });
