/**
 * filesync against the DESIGN §11 workloads on a 3-node chain A–B–C over loopback, optionally
 * side by side with Syncthing: `npm run bench -- [--with-syncthing] [--short]`. Env: REPEAT
 * (default 3), SEED. Prints one table of medians and writes JSON lines to bench/results/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePortBase } from '../../test/helpers/ports.js';
import { fmt, median, record } from '../util.js';
import { startFilesync, startSyncthing, type BenchCluster } from './clusters.js';
import { processTree, procStats, resetPeak } from './procs.js';
import { entryCount, identicalAt } from './tree.js';
import {
  bigFile,
  churn,
  concurrentEdit,
  FULL,
  dropPageCache,
  flushDirtyPages,
  removeAll,
  SeededBytes,
  SHORT,
  smallFiles,
  writeScaleTree,
  type Sizes,
} from './workloads.js';

export type Workload = 'idle' | 'a' | 'c' | 'e' | 'b' | 'd' | 's';
export interface Measurement {
  system: string;
  workload: Workload;
  /** Time until C was identical; for idle, how long the cluster sat idle. */
  ms: number;
  /** Largest node's peak RSS during the workload; for idle, its RSS at the end of it. */
  peakRssMiB: number;
  cpuS: number;
  conflicts?: number[];
  /** s: A's start scan (filesync reports it in /status). */
  scanMs?: number | null;
  /** s: sync entries each node received (A, B, C), against the tree's paths: what crossed the wire. */
  entriesReceived?: number[] | null;
}

/** Ports used by a cluster: filesync P..P+2, Syncthing GUI P+10.. and listen P+20.. */
const freeBase = (): Promise<number> => freePortBase([0, 1, 2, 10, 11, 12, 20, 21, 22]);

type Starter = (base: string, port: number) => Promise<BenchCluster>;

/** Each node's processes (Syncthing runs a monitor process with the real one under it). */
async function nodePids(c: BenchCluster): Promise<number[][]> {
  return Promise.all(c.pids().map(processTree));
}

type ProcStats = Awaited<ReturnType<typeof procStats>>;

/** Each node's processes' stats, read once. */
function statsOf(nodes: number[][]): Promise<ProcStats[][]> {
  return Promise.all(nodes.map((pids) => Promise.all(pids.map(procStats))));
}

/** Per node, the sum over its processes of `pick`, in MiB: a node costs all of its processes. */
function perNodeMiB(stats: ProcStats[][], pick: (s: ProcStats) => number): number[] {
  return stats.map((ps) => ps.reduce((n, s) => n + pick(s), 0) / 1048576);
}

/**
 * Run `fn`; the largest node's peak RSS meanwhile (a node's processes' peaks added up: for
 * Syncthing, its monitor's ~17 MiB and the real process's peak), the CPU all nodes used, and
 * each node's processes' stats at the end.
 */
async function measured<T>(
  c: BenchCluster,
  sizes: Sizes,
  fn: () => Promise<T>,
): Promise<{ value: T; peakRssMiB: number; cpuS: number; after: ProcStats[][] }> {
  // Untimed: what earlier workloads left dirty in the page cache (Syncthing's three buffered
  // copies of b, s's 30,000 files) is written back now, not during this one (the kernel
  // flushes dirty pages 30 s after they were written); then the page cache is emptied, so
  // every repeat starts alike (see dropPageCache).
  await flushDirtyPages();
  if (sizes.dropPageCache) await dropPageCache();
  const nodes = await nodePids(c);
  for (const pid of nodes.flat()) await resetPeak(pid);
  const before = (await statsOf(nodes)).flat();
  const value = await fn();
  const after = await statsOf(nodes);
  return {
    value,
    peakRssMiB: Math.max(...perNodeMiB(after, (s) => s.peakRssBytes)),
    cpuS: after.flat().reduce((n, s, i) => n + s.cpuS - before[i]!.cpuS, 0),
    after,
  };
}

/**
 * A comparison that has not answered in `ms` counts as "not identical yet" (logged): one
 * filesystem call in the harness was once seen never to settle, which hung a whole run.
 */
async function bounded(
  p: Promise<number | null>,
  ms: number,
  log: (s: string) => void,
): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => {
      log(`tree comparison took over ${ms} ms; looking again`);
      resolve(null);
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One repeat of a, c, e, b, d on a fresh cluster, then s on another. */
async function oneRun(
  system: string,
  start: Starter,
  sizes: Sizes,
  seed: number,
  out: Measurement[],
  log: (s: string) => void,
  withScale: boolean,
  leftovers: string[],
): Promise<void> {
  const base = await mkdtemp(path.join(os.tmpdir(), `bench-${system}-`));
  leftovers.push(base);
  const rng = new SeededBytes(seed);
  const c = await start(base, await freeBase());
  try {
    const push = (
      workload: Workload,
      m: { value: number; peakRssMiB: number; cpuS: number },
    ): void => {
      out.push({ system, workload, ms: m.value, peakRssMiB: m.peakRssMiB, cpuS: m.cpuS });
      log(`${system} ${workload}: ${fmt(m.value)} ms`);
    };
    // idle: RSS of a node that has nothing to do is a target of its own; read before any
    // workload has run. The wait is what is measured here, not a stand-in for a condition.
    const idle = await measured(c, sizes, async () => {
      await new Promise((r) => setTimeout(r, sizes.idleMs));
      return sizes.idleMs;
    });
    const rssMiB = perNodeMiB(idle.after, (s) => s.rssBytes);
    out.push({
      system,
      workload: 'idle',
      ms: idle.value,
      peakRssMiB: Math.max(...rssMiB),
      cpuS: idle.cpuS,
    });
    log(
      `${system} idle: RSS ${rssMiB.map((m) => fmt(m, 1)).join(' / ')} MiB after ${fmt(idle.value)} ms`,
    );
    push('a', await measured(c, sizes, () => smallFiles(c, rng, sizes.smallFiles)));
    push('c', await measured(c, sizes, () => churn(c, rng, sizes.churnOps)));
    push('e', await measured(c, sizes, () => removeAll(c)));
    push('b', await measured(c, sizes, () => bigFile(c, rng, sizes.bigBytes, base)));
    const d = await measured(c, sizes, () => concurrentEdit(c, rng, system === 'filesync'));
    out.push({
      system,
      workload: 'd',
      ms: d.value[0],
      peakRssMiB: d.peakRssMiB,
      cpuS: d.cpuS,
      conflicts: d.value[1],
    });
    log(`${system} d: ${fmt(d.value[0])} ms, conflict copies per node ${d.value[1].join('/')}`);
  } finally {
    await c.stop();
  }
  if (!withScale) return;
  // s: a large tree already on A when the cluster starts.
  const sBase = path.join(base, 's');
  await writeScaleTree(
    path.join(sBase, system === 'filesync' ? 'fs-A' : 'st-A'),
    rng,
    sizes.scaleFiles,
  );
  const t0 = performance.now();
  const sc = await start(sBase, await freeBase());
  try {
    // Looks at 100,000-file trees take CPU from the nodes on two cores (comparing two trees'
    // names alone is ~0.2 CPU-s): while C holds fewer paths than A (which does not change
    // during s) count C's only, and poll every 500 ms at most (1 % of the time measured).
    const want = entryCount(sc.dirs[0], sc.exclude);
    let checkMs = 0;
    let at: number | null = null;
    for (;;) {
      const c0 = performance.now();
      if (entryCount(sc.dirs[2], sc.exclude) === want)
        at = await bounded(identicalAt(sc.dirs[0], sc.dirs[2], sc.exclude), 120_000, log);
      checkMs = performance.now() - c0;
      if (at !== null) break;
      if (performance.now() - t0 > 900_000) throw new Error('s: timed out');
      await new Promise((r) => setTimeout(r, Math.max(500, 2 * checkMs)));
    }
    const ms = at - t0;
    const stats = await statsOf(await nodePids(sc));
    const scanMs = (await sc.startScanMs?.()) ?? null;
    const entriesReceived = (await sc.entriesReceived?.()) ?? null;
    out.push({
      system,
      workload: 's',
      ms,
      peakRssMiB: Math.max(...perNodeMiB(stats, (s) => s.peakRssBytes)),
      cpuS: stats.flat().reduce((n, s) => n + s.cpuS, 0),
      scanMs,
      entriesReceived,
    });
    log(
      `${system} s: ${fmt(ms)} ms (the last look, which found C identical, took ${fmt(checkMs)} ms; its hashing is not counted)${scanMs === null ? '' : `, start scan on A ${fmt(scanMs)} ms`}${entriesReceived === null ? '' : `, sync entries received ${entriesReceived.map((n) => fmt(n)).join(' / ')}`}`,
    );
  } finally {
    await sc.stop();
  }
}

export async function runSyncBench(opts: {
  short: boolean;
  repeat: number;
  withSyncthing: boolean;
  seed: number;
  /** Runs of the s workload (it is long); the others run `repeat` times. */
  scaleRepeat: number;
  log?: (s: string) => void;
}): Promise<Measurement[]> {
  const sizes = { ...(opts.short ? SHORT : FULL) };
  if (process.env.SCALE_FILES) sizes.scaleFiles = Number(process.env.SCALE_FILES);
  const out: Measurement[] = [];
  const log = opts.log ?? (() => undefined);
  const systems: [string, Starter][] = [['filesync', startFilesync]];
  if (opts.withSyncthing) systems.push(['syncthing', startSyncthing]);
  // Trees are removed at the very end, not after each run. This disk (ext4 without a journal)
  // skips inodes freed in the last 60 s (360 s while their table block is dirty) when it
  // allocates new ones, scanning past each: after a run's 60,000 files were deleted, every
  // create in the next run spent ~35 % of a relay's CPU in that scan and the same run took
  // 1-2x as long depending on where its inodes landed. That is the harness's own cleanup,
  // not part of any workload.
  const leftovers: string[] = [];
  try {
    for (let r = 0; r < opts.repeat; r++) {
      for (const [name, start] of systems)
        await oneRun(name, start, sizes, opts.seed + r, out, log, r < opts.scaleRepeat, leftovers);
    }
  } finally {
    for (const base of leftovers) await rm(base, { recursive: true, force: true, maxRetries: 5 });
  }
  return out;
}

function table(ms: Measurement[], withSyncthing: boolean): string {
  const rows: string[][] = [
    [
      'workload',
      'filesync s',
      'fs peak RSS MiB',
      'fs CPU s',
      ...(withSyncthing ? ['syncthing s', 'st peak RSS MiB', 'Syncthing ÷ filesync'] : []),
    ],
  ];
  for (const w of ['idle', 'a', 'c', 'e', 'b', 'd', 's'] as Workload[]) {
    const pick = (sys: string): Measurement[] =>
      ms.filter((m) => m.system === sys && m.workload === w);
    const fs = pick('filesync');
    const st = pick('syncthing');
    if (fs.length === 0 && st.length === 0) continue; // not run (S_REPEAT=0 leaves out s)
    const med = (xs: Measurement[], k: 'ms' | 'peakRssMiB' | 'cpuS'): number =>
      median(xs.map((x) => x[k]));
    // idle has no time to compare: its row is RSS (at the end of the idle time) and CPU.
    const time = (xs: Measurement[]): string => (w === 'idle' ? '-' : fmt(med(xs, 'ms') / 1000, 2));
    const row = [w, time(fs), fmt(med(fs, 'peakRssMiB')), fmt(med(fs, 'cpuS'), 1)];
    if (withSyncthing)
      row.push(
        time(st),
        fmt(med(st, 'peakRssMiB')),
        w === 'idle' ? '-' : `${fmt(med(st, 'ms') / med(fs, 'ms'), 1)}×`,
      );
    rows.push(row);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}

if (process.argv[1]?.endsWith('run.ts')) {
  // Nodes run the compiled output (what `npm ci` builds): make sure it is current.
  const { execFileSync } = await import('node:child_process');
  execFileSync('npm', ['run', '--silent', 'build'], {
    cwd: path.join(import.meta.dirname, '../..'),
    stdio: 'inherit',
  });
  const args = process.argv.slice(2);
  const short = args.includes('--short');
  const withSyncthing = args.includes('--with-syncthing');
  const repeat = Number(process.env.REPEAT ?? (short ? 1 : 3));
  const seed = Number(process.env.SEED ?? 1);
  const scaleRepeat = Number(process.env.S_REPEAT ?? 1);
  const ms = await runSyncBench({
    short,
    repeat,
    withSyncthing,
    seed,
    scaleRepeat,
    log: (s) => console.error(s),
  });
  const sizes = { ...(short ? SHORT : FULL) };
  if (process.env.SCALE_FILES) sizes.scaleFiles = Number(process.env.SCALE_FILES);
  console.log(
    `filesync${withSyncthing ? ' vs Syncthing 1.19' : ''}: 3-node chain A–B–C on loopback, time until C is identical; medians of ${repeat} run(s) (s: ${scaleRepeat})` +
      `\nidle: RSS of the largest node after ${sizes.idleMs / 1000} s idle from start, CPU over that time` +
      `\nsizes: a ${sizes.smallFiles} files, c ${sizes.churnOps} ops, b ${sizes.bigBytes / 1048576} MiB, s ${sizes.scaleFiles} files` +
      `\nfsync: filesync fdatasync per WAL group commit + fsync of every received file and its directory; Syncthing defaults` +
      (scaleRepeat > 0
        ? `\ns: start scan on A ${ms
            .filter((m) => m.workload === 's' && m.scanMs != null)
            .map((m) => `${m.system} ${fmt(m.scanMs! / 1000, 1)} s`)
            .join(', ')}` +
          `\ns: sync entries received per node (A / B / C) ${ms
            .filter((m) => m.workload === 's' && m.entriesReceived != null)
            .map((m) => `${m.system} ${m.entriesReceived!.map((n) => fmt(n)).join(' / ')}`)
            .join(', ')}`
        : '') +
      `\nd: conflict copies per node ${ms
        .filter((m) => m.workload === 'd')
        .map((m) => `${m.system} ${m.conflicts?.join('/')}`)
        .join(', ')}\n`,
  );
  console.log(table(ms, withSyncthing));
  for (const m of ms) await record('sync.jsonl', { ...m, short, seed, repeat });
  process.exit(0);
}
