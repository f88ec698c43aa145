import { describe, expect, it } from 'vitest';
import { runSyncBench } from '../../bench/sync/run.js';
import { SHORT } from '../../bench/sync/workloads.js';

/** The benchmark harness in its short mode, so it keeps working. No timing is asserted. */
describe('bench (short mode)', () => {
  it('runs every workload on a filesync chain and reports one conflict copy per node for d', async () => {
    const ms = await runSyncBench({
      short: true,
      repeat: 1,
      withSyncthing: false,
      seed: 1,
      scaleRepeat: 1,
    });
    expect(ms.map((m) => m.workload).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'idle', 's']);
    expect(ms.find((m) => m.workload === 'd')?.conflicts).toEqual([1, 1, 1]);
    for (const m of ms) expect(m.peakRssMiB).toBeGreaterThan(0);
    // Every path reached C as at least one entry (what crossed the wire is reported).
    const s = ms.find((m) => m.workload === 's')!;
    expect(s.entriesReceived).toHaveLength(3);
    expect(s.entriesReceived![2]).toBeGreaterThanOrEqual(SHORT.scaleFiles);
  }, 300_000);
});
