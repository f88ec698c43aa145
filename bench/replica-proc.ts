/**
 * A replica in its own process for the benchmarks, so peers do not share one event loop.
 * Usage: replica-proc <dataDir> [fill N] [peers a,b] [nodiscover]
 * Prints {"advertise": "..."} once listening; SIGTERM closes it cleanly.
 */
import type { Entry } from '../src/core/index.js';
import { setLogLevel } from '../src/log/index.js';
import { WaveNode } from '../src/node/index.js';
import { Replica } from '../src/replica/index.js';

setLogLevel('error');
const [dataDir, ...rest] = process.argv.slice(2);
if (dataDir === undefined) {
  process.stderr.write('usage: replica-proc <dataDir> [fill N] [peers a,b] [nodiscover]\n');
  process.exit(2);
}
const arg = (name: string): string | undefined => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const fill = Number(arg('fill') ?? 0);
if (fill > 0) {
  const node = await WaveNode.open({ dataDir, fsync: 'never', walMaxBytes: 1 << 30 });
  const value = Buffer.alloc(100, 7);
  const now = Date.now();
  for (let i = 0; i < fill; i += 10_000) {
    const page: Entry[] = [];
    for (let j = i; j < Math.min(fill, i + 10_000); j++) {
      page.push({ key: `key-${j}`, value, meta: { node: 4242, seq: j + 1, ts: now } });
    }
    await node.merge(page, 4242);
  }
  // As if node 4242 had synced with us in rounds: we truthfully cover all it wrote.
  node.raiseAcks(new Map([[4242, fill]]));
  await node.close();
}
const r = await Replica.start({
  dataDir,
  port: 0,
  peers: arg('peers')?.split(',') ?? [],
  sync: { discover: !rest.includes('nodiscover') },
});
process.stdout.write(JSON.stringify({ advertise: r.transport.advertise }) + '\n');
process.on('SIGTERM', () => {
  void r.close().then(() => process.exit(0));
});
