/**
 * The seeds a simulator's long mode runs, from its command line: `--seed N` replays one,
 * otherwise `--seeds COUNT` from `--from FIRST`. A bad number exits with status 2.
 */
export function seedsFromArgs(args: readonly string[], defaultCount: number): number[] {
  const opt = (name: string, dflt: number): number => {
    const i = args.indexOf(name);
    const v = i >= 0 ? Number(args[i + 1]) : dflt;
    if (!Number.isSafeInteger(v) || v < 0) {
      process.stderr.write(`${name} needs a whole number\n`);
      process.exit(2);
    }
    return v;
  };
  if (args.includes('--seed')) return [opt('--seed', 0)];
  const from = opt('--from', 1);
  return Array.from({ length: opt('--seeds', defaultCount) }, (_, i) => from + i);
}
