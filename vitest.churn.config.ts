import { defineConfig } from 'vitest/config';

/**
 * `npm run churn`: only the kill -9 churn run (test/crash/churn-kill.test.ts, whose default
 * seed `npm test` runs too), to replay a seed: CHURN_SEED picks the run, CHURN_KILLS the kills.
 */
export default defineConfig({
  test: {
    include: ['test/crash/churn-kill.test.ts'],
    testTimeout: 600_000,
    pool: 'forks',
    env: { FILESYNC_LOG_LEVEL: 'error' },
  },
});
