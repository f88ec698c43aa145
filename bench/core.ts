/**
 * WaveKV core and store benchmarks: `npm run bench:core`. Medians of REPEAT runs (default 5).
 * SCALE shrinks the recovery and memory workloads (default 1_000_000 entries).
 * fsync policy: fdatasync once per group commit (the default), stated beside every figure.
 */
import { State, type Entry } from '../src/core/index.js';
import { setLogLevel } from '../src/log/index.js';
import { WaveNode } from '../src/node/index.js';
import { envInt, fmt, median, percentile, record, withDir } from './util.js';

setLogLevel('error');
const REPEAT = envInt('REPEAT', 5);
const SCALE = envInt('SCALE', 1_000_000);
const VALUE = Buffer.alloc(100, 7);

/** Many concurrent puts: the group commit shares one fdatasync among everything in a turn. */
async function batchedPuts(n: number, concurrency: number): Promise<number> {
  return withDir(async (dir) => {
    const node = await WaveNode.open({ dataDir: dir });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          await node.put(`key-${i}`, VALUE);
        }
      }),
    );
    const s = (performance.now() - t0) / 1000;
    await node.close();
    return n / s;
  });
}

async function sequentialLatency(n: number): Promise<number[]> {
  return withDir(async (dir) => {
    const node = await WaveNode.open({ dataDir: dir });
    const lat: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await node.put(`key-${i}`, VALUE);
      lat.push(performance.now() - t0);
    }
    await node.close();
    return lat;
  });
}

function remoteEntries(n: number, origin: number): Entry[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    key: `remote-${i}`,
    value: VALUE,
    meta: { node: origin, seq: i + 1, ts: now },
  }));
}

async function mergeThroughput(n: number): Promise<number> {
  const entries = remoteEntries(n, 4242);
  return withDir(async (dir) => {
    const node = await WaveNode.open({ dataDir: dir });
    const t0 = performance.now();
    for (let i = 0; i < n; i += 5000) await node.merge(entries.slice(i, i + 5000), 4242);
    const s = (performance.now() - t0) / 1000;
    await node.close();
    return n / s;
  });
}

async function fill(dir: string, n: number): Promise<void> {
  const node = await WaveNode.open({ dataDir: dir, fsync: 'never', walMaxBytes: 1 << 30 });
  const entries = remoteEntries(n, 4242);
  for (let i = 0; i < n; i += 10_000) await node.merge(entries.slice(i, i + 10_000), 4242);
  await node.close();
}

async function recoveryMs(dir: string): Promise<number> {
  const t0 = performance.now();
  const node = await WaveNode.open({ dataDir: dir });
  const ms = performance.now() - t0;
  if (node.state.size !== SCALE) throw new Error(`recovered ${node.state.size} of ${SCALE}`);
  node.abandon();
  return ms;
}

/**
 * Everything the state holds per entry, measured as heap + array-buffer growth while entries
 * are created and applied, minus the raw key and value bytes: the kept entry (with its value's
 * slab range) and meta objects, the data map slot, the origin index slots.
 */
async function bytesPerEntry(n: number): Promise<{ overhead: number; payload: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  // Array buffers are freed after a GC, off the main thread, and earlier workloads leave
  // plenty: one gc() read right away gave 30–220 bytes per entry for the same code.
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const now = Date.now();
  await settle();
  const before = process.memoryUsage();
  const state = new State(1);
  let payload = 0;
  for (let i = 0; i < n; i++) {
    const key = `remote-${i}`;
    const value = Buffer.from(VALUE);
    payload += key.length + value.length;
    state.apply({ type: 'set', entry: { key, value, meta: { node: 4242, seq: i + 1, ts: now } } });
  }
  await settle();
  const after = process.memoryUsage();
  const used = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  if (state.size !== n) throw new Error('size');
  return { overhead: (used - payload) / n, payload: payload / n };
}

async function main(): Promise<void> {
  const rows: [string, string, string][] = [];
  const put = [];
  for (let r = 0; r < REPEAT; r++) put.push(await batchedPuts(100_000, 10_000));
  rows.push(['durable puts/s, 10k concurrent, 100 B values', fmt(median(put)), '≥ 100,000']);

  const lat = [];
  for (let r = 0; r < REPEAT; r++) lat.push(...(await sequentialLatency(500)));
  rows.push([
    'awaited sequential put p50 / p99 (ms)',
    `${fmt(percentile(lat, 50), 2)} / ${fmt(percentile(lat, 99), 2)}`,
    '',
  ]);

  const merge = [];
  for (let r = 0; r < REPEAT; r++) merge.push(await mergeThroughput(100_000));
  rows.push(['durable merge entries/s (pages of 5k)', fmt(median(merge)), '']);

  const rec = await withDir(async (dir) => {
    await fill(dir, SCALE);
    const xs = [];
    for (let r = 0; r < REPEAT; r++) xs.push(await recoveryMs(dir));
    return median(xs);
  });
  rows.push([`recovery of ${fmt(SCALE)} entries from snapshot (ms)`, fmt(rec), '≤ 5,000']);

  const mem = await bytesPerEntry(SCALE);
  rows.push([`state overhead per entry, beyond key + value (bytes)`, fmt(mem.overhead), '≤ 200']);

  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`WaveKV core — medians of ${REPEAT} runs; fsync policy: fdatasync per group commit`);
  console.log(`${'measure'.padEnd(w)}  ${'value'.padStart(14)}  target`);
  for (const [k, v, t] of rows) console.log(`${k.padEnd(w)}  ${v.padStart(14)}  ${t}`);
  await record('core.jsonl', {
    repeat: REPEAT,
    scale: SCALE,
    fsync: 'fdatasync per group commit',
    putsPerSec: median(put),
    putP50Ms: percentile(lat, 50),
    putP99Ms: percentile(lat, 99),
    mergePerSec: median(merge),
    recoveryMs: rec,
    overheadBytesPerEntry: mem.overhead,
  });
}

await main();
