/**
 * Long mode of the simulator: `npm run sim -- --seeds 20000 [--from 1]`, or `--seed N` to replay
 * one history. Exits non-zero at the first failure, printing the command that replays it.
 */
import { seedsFromArgs } from './args.js';
import { World } from './world.js';

const seeds = seedsFromArgs(process.argv.slice(2), 10_000);
const t0 = Date.now();
let events = 0;
for (const [i, seed] of seeds.entries()) {
  try {
    events += (await new World(seed).run()).events;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nreplay: npm run sim -- --seed ${seed}\n`);
    process.exit(1);
  }
  if ((i + 1) % 500 === 0)
    process.stdout.write(`${i + 1} seeds ok (${Math.round((Date.now() - t0) / 1000)} s)\n`);
}
process.stdout.write(
  `${seeds.length} passed, 0 failed (${events} events, ${Math.round((Date.now() - t0) / 1000)} s)\n`,
);
