/**
 * The mirror simulator's long mode: `npm run sim:mirror -- --seeds 1000 [--from 1]`, or
 * `--seed N` to replay one history; `--kills-only` leaves power cuts out. Exits non-zero at
 * the first failure.
 */
import { seedsFromArgs } from './args.js';
import { MirrorWorld } from './mirror-world.js';

const args = process.argv.slice(2);
const power = !args.includes('--kills-only');
const seeds = seedsFromArgs(args, 1000);
const t0 = Date.now();
let events = 0;
for (const seed of seeds) {
  try {
    events += (await new MirrorWorld(seed, power).run()).events;
  } catch (e) {
    const again = `npm run sim:mirror -- --seed ${seed}${power ? '' : ' --kills-only'}`;
    process.stderr.write(`${(e as Error).message}\nreplay: ${again}\n`);
    process.exit(1);
  }
}
process.stdout.write(
  `${seeds.length} passed (${events} events, ${Math.round((Date.now() - t0) / 1000)} s)\n`,
);
