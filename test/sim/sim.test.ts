import { describe, expect, it } from 'vitest';
import { World } from './world.js';

/**
 * The deterministic simulator: real WaveNodes (core + store on disks that lose unsynced writes)
 * and real sync drivers on a fake network and clock. SIM_SEEDS sets how many seeds (default 1000),
 * SIM_SEED replays one. A failure prints the command that replays it.
 */
const count = Number(process.env.SIM_SEEDS ?? 1000);
const only = process.env.SIM_SEED;
const base = Number(process.env.SIM_BASE ?? 1);

describe('simulator', () => {
  it(`${only ? `seed ${only}` : `${count} seeds`} converge with truthful acks`, async () => {
    const seeds = only ? [Number(only)] : Array.from({ length: count }, (_, i) => base + i);
    let events = 0;
    for (const seed of seeds) {
      try {
        events += (await new World(seed).run()).events;
      } catch (e) {
        throw new Error(`${(e as Error).message}\nreplay: npm run sim -- --seed ${seed}`, {
          cause: e,
        });
      }
    }
    expect(events).toBeGreaterThan(seeds.length * 100);
  }, 600_000);
});
