import { describe, expect, it } from 'vitest';
import { MirrorWorld } from './mirror-world.js';

/**
 * The mirror's simulator: the production FileSync engine, WaveNode, store and sync driver on
 * in-memory disks, a fake network and virtual clocks, with user edits, lost watcher hints and
 * kill -9 and power cuts. MIRROR_SEEDS sets how many seeds (default 1000), MIRROR_SEED replays one.
 */
const count = Number(process.env.MIRROR_SEEDS ?? 1000);
const only = process.env.MIRROR_SEED;

describe('mirror simulator', () => {
  it(`${only ? `seed ${only}` : `${count} seeds`}: every tree the same, nothing lost or made up`, async () => {
    const seeds = only ? [Number(only)] : Array.from({ length: count }, (_, i) => 1 + i);
    let edits = 0;
    for (const seed of seeds) {
      try {
        edits += (await new MirrorWorld(seed).run()).writes;
      } catch (e) {
        throw new Error(`${(e as Error).message}\nreplay: npm run sim:mirror -- --seed ${seed}`, {
          cause: e,
        });
      }
    }
    expect(edits).toBeGreaterThan(seeds.length * 30);
  }, 900_000);
});
