import { defineConfig } from 'vitest/config';

/**
 * `npm run churn`: the kill -9 churn run (test/crash/churn-kill.spec.ts), kept out of
 * `npm test` until it passes every seed. CHURN_SEED picks the run, CHURN_KILLS the kills.
 */
export default defineConfig({
  test: {
    include: ['test/crash/churn-kill.spec.ts'],
    testTimeout: 600_000,
    pool: 'forks',
    env: { FILESYNC_LOG_LEVEL: 'error' },
  },
});
