/**
 * The mirror simulator's long mode: `npm run sim:mirror -- --seeds 1000 [--from 1]`, or
 * `--seed N` to replay one history; `--kills-only` leaves power cuts out. Exits non-zero at
 * the first failure.
 */
import { MirrorWorld } from './mirror-world.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isSafeInteger(v) || v < 0) {
    process.stderr.write(`${name} needs a whole number\n`);
    process.exit(2);
  }
  return v;
};
const power = !args.includes('--kills-only');
const one = args.includes('--seed') ? opt('--seed', 0) : null;
const seeds =
  one !== null
    ? [one]
    : Array.from({ length: opt('--seeds', 1000) }, (_, i) => opt('--from', 1) + i);
const t0 = Date.now();
let events = 0;
for (const seed of seeds) {
  try {
    events += (await new MirrorWorld(seed, power).run()).events;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nreplay: npm run sim:mirror -- --seed ${seed}\n`);
    process.exit(1);
  }
}
process.stdout.write(
  `${seeds.length} passed (${events} events, ${Math.round((Date.now() - t0) / 1000)} s)\n`,
);
