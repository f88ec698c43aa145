/**
 * Replication benchmarks over loopback WebSockets: `npm run bench:replication`.
 * - bootstrap of SCALE keys (100-byte values, default 1M) to a new peer;
 * - single-write latency from node 1 to node 3 across a chain 1–2–3 (no 1–3 link), push relay;
 * - sustained small-write replication rate across the same chain.
 * fsync policy: fdatasync per group commit on every node (the default).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import type { Entry } from '../src/core/index.js';
import { setLogLevel } from '../src/log/index.js';
import { Replica, type ReplicaOptions } from '../src/replica/index.js';
import { envInt, fmt, median, percentile, record, withDir } from './util.js';

setLogLevel('error');
const REPEAT = envInt('REPEAT', 3);
const SCALE = envInt('SCALE', 1_000_000);
const VALUE = Buffer.alloc(100, 7);

const until = async (cond: () => boolean, timeoutMs = 120_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('benchmark timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
};

function start(dir: string, name: string, opts: Partial<ReplicaOptions> = {}): Promise<Replica> {
  return Replica.start({ dataDir: path.join(dir, name), port: 0, ...opts });
}

/** Start a replica in a child process; resolves with its address once it listens. */
async function spawnReplica(args: string[]): Promise<{ child: ChildProcess; advertise: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'replica-proc.ts'), ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let buf = '';
  for await (const chunk of child.stdout!) {
    buf += String(chunk);
    const nl = buf.indexOf('\n');
    if (nl >= 0)
      return {
        child,
        advertise: (JSON.parse(buf.slice(0, nl)) as { advertise: string }).advertise,
      };
  }
  throw new Error('replica process exited before listening');
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  process.kill(child.pid!, 'SIGTERM');
  await exited;
}

async function bootstrap(): Promise<number> {
  return withDir(async (dir) => {
    // Node 1 runs in its own process, filled before it listens (setup, not measured).
    const p1 = await spawnReplica([path.join(dir, '1'), 'fill', String(SCALE)]);
    const t0 = performance.now();
    const r2 = await start(dir, '2', { peers: [p1.advertise] });
    const progress = process.env.PROGRESS
      ? setInterval(
          () => console.error(((performance.now() - t0) / 1000).toFixed(1), r2.node.state.size),
          1000,
        )
      : null;
    await until(() => r2.node.state.size >= SCALE + 1);
    if (progress) clearInterval(progress);
    const s = (performance.now() - t0) / 1000;
    await r2.close();
    await stopChild(p1.child);
    return s;
  });
}

/** Chain 1–2–3 with no 1–3 link; node 2, the relay, runs in its own process. */
async function chain(
  dir: string,
): Promise<{ r1: Replica; r3: Replica; stop: () => Promise<void> }> {
  const sync = { discover: false };
  const r1 = await start(dir, '1', { sync });
  const p2 = await spawnReplica([
    path.join(dir, '2'),
    'peers',
    r1.transport.advertise,
    'nodiscover',
  ]);
  const r3 = await start(dir, '3', { sync, peers: [p2.advertise] });
  await until(
    () => r1.driver.linkedPeers.length === 1 && r3.driver.linkedPeers.length === 1,
    10_000,
  );
  const stop = async (): Promise<void> => {
    await r3.close();
    await stopChild(p2.child);
    await r1.close();
  };
  return { r1, r3, stop };
}

async function latency(n: number): Promise<number[]> {
  return withDir(async (dir) => {
    const { r1, r3, stop } = await chain(dir);
    const lat: number[] = [];
    for (let i = 0; i < n; i++) {
      const key = `lat-${i}`;
      const arrived = new Promise<void>((resolve) => {
        const on = (c: { entry: Entry }): void => {
          if (c.entry.key === key) {
            r3.node.off('change', on);
            resolve();
          }
        };
        r3.node.on('change', on);
      });
      const t0 = performance.now();
      await r1.node.put(key, VALUE);
      await arrived;
      lat.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 15)); // writes spaced out: measure latency, not batching
    }
    await stop();
    return lat;
  });
}

async function sustained(n: number): Promise<number> {
  return withDir(async (dir) => {
    const { r1, r3, stop } = await chain(dir);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (next < n) await r1.node.put(`w-${next++}`, VALUE);
      }),
    );
    await until(
      () => r3.node.get(`w-${n - 1}`) !== undefined && [...r3.node.entries('w-')].length === n,
    );
    const rate = n / ((performance.now() - t0) / 1000);
    await stop();
    return rate;
  });
}

const only = process.env.ONLY;
const boot: number[] = [];
const lat: number[] = [];
const rate: number[] = [];
for (let r = 0; r < REPEAT; r++) {
  if (!only || only === 'bootstrap') boot.push(await bootstrap());
  if (!only || only === 'latency') lat.push(...(await latency(100)));
  if (!only || only === 'sustained') rate.push(await sustained(50_000));
}
if (only) {
  console.log({ boot, latP50: lat.length ? percentile(lat, 50) : null, rate });
  process.exit(0);
}

const rows: [string, string, string][] = [
  [
    `bootstrap of ${fmt(SCALE)} keys (100 B values) to a new peer (s)`,
    fmt(median(boot), 2),
    '≤ 10',
  ],
  [
    'single write, node 1 → node 3 across the chain, p50 / p99 (ms)',
    `${fmt(percentile(lat, 50), 1)} / ${fmt(percentile(lat, 99), 1)}`,
    'p50 ≤ 20',
  ],
  ['sustained small writes replicated 1 → 3 (writes/s)', fmt(median(rate)), ''],
];
const w = Math.max(...rows.map((r) => r[0].length));
console.log(
  `WaveKV replication — medians of ${REPEAT} runs; loopback; fsync: fdatasync per group commit`,
);
for (const [k, v, t] of rows) console.log(`${k.padEnd(w)}  ${v.padStart(14)}  ${t}`);
await record('replication.jsonl', {
  repeat: REPEAT,
  scale: SCALE,
  fsync: 'fdatasync per group commit',
  bootstrapS: median(boot),
  latencyP50Ms: percentile(lat, 50),
  latencyP99Ms: percentile(lat, 99),
  sustainedWritesPerS: median(rate),
});
