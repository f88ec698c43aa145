/**
 * Link set-up time (npm run bench:handshake): two replicas in one process on loopback, B
 * dialling A; the time from B's dial until both sides have the link up, over ROUNDS
 * reconnects (A hangs up, B dials again). With a secret (its proof over the TLS channel) and
 * without (loopback demo mode). Prints the median and the 90th percentile.
 */
import { Replica } from '../src/replica/index.js';
import { setLogLevel } from '../src/log/index.js';
import { waitFor } from '../test/helpers/tmp.js';
import { envInt, fmt, median, percentile, withDir } from './util.js';

const ROUNDS = envInt('ROUNDS', 30);
setLogLevel('error');

async function measure(dir: string, secret: string | null): Promise<number[]> {
  const sync = { discover: false };
  const a = await Replica.start({ dataDir: `${dir}/a`, port: 0, secret, sync });
  const b = await Replica.start({ dataDir: `${dir}/b`, port: 0, secret, sync });
  const times: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      b.transport.dial(a.transport.advertise);
      await waitFor(
        () => a.driver.linkedPeers.length === 1 && b.driver.linkedPeers.length === 1,
        'the link',
        10_000,
        1,
      );
      times.push(performance.now() - t0);
      b.transport.hangUp(a.node.id);
      await waitFor(() => a.driver.linkedPeers.length === 0, 'the hang-up', 10_000, 1);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  return times;
}

for (const secret of ['a secret', null]) {
  const ms = await withDir((dir) => measure(dir, secret));
  console.log(
    `link set-up ${secret ? 'with a secret' : 'loopback demo mode'}: median ${fmt(median(ms), 1)} ms, p90 ${fmt(percentile(ms, 90), 1)} ms (${ROUNDS} links)`,
  );
}
