/**
 * Child process for the SIGKILL test: awaited puts from several concurrent writers, each
 * reported on stdout (`key seq`) only after its promise resolved. Runs until killed.
 */
import { WaveNode } from '../../src/node/index.js';

const [dataDir, run] = process.argv.slice(2);
if (dataDir === undefined || run === undefined) {
  process.stderr.write('usage: put-child <dataDir> <run>\n');
  process.exit(2);
}
const node = await WaveNode.open({ dataDir, walMaxBytes: 32 * 1024 });
process.stdout.write('ready\n');
const writers = Array.from({ length: 8 }, async (_, w) => {
  for (let i = 0; ; i++) {
    const key = `r${run}-w${w}-${i}`;
    const e = await node.put(key, Buffer.from(`${key}:${'x'.repeat(i % 200)}`));
    process.stdout.write(`${key} ${e.meta.seq}\n`);
  }
});
await Promise.all(writers);
