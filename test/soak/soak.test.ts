import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { soak } from './soak.js';

describe('soak (short)', () => {
  it('churn with kills and freezes on a 3-node chain converges', async () => {
    const { dir, cleanup } = await tempDir('filesync-soak-');
    try {
      const r = await soak(dir, 12_000, 4242);
      expect(r.ops).toBeGreaterThan(50);
    } finally {
      await cleanup();
    }
  }, 240_000);
});
