import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchCluster } from './clusters.js';
import { countConflicts, identicalAt, listTree, until } from './tree.js';

/** `sync(1)`: every dirty page written back (blocks until done; a machine without it skips). */
export function flushDirtyPages(): Promise<void> {
  return new Promise((resolve) => execFile('sync', () => resolve()));
}

/**
 * Empty the page cache of clean pages (root only; elsewhere a no-op). On this VM, page cache
 * pages cost far more to fill while earlier repeats' trees still hold the cache: with the
 * trees of earlier b runs kept, a b probe's copy of 256 MiB onto A took 570-840 ms against
 * 140 ms in the first run, A published 0.5 s later and spent 0.5 CPU-s more (it hashed a file
 * still being copied, twice); with the cache emptied before each run, every run was like the
 * first. Which repeat a workload is must not decide its time.
 */
export async function dropPageCache(): Promise<void> {
  await writeFile('/proc/sys/vm/drop_caches', '1').catch(() => undefined);
}

/** Seeded bytes (mulberry32), so SEED makes every run's content the same. */
export class SeededBytes {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i + 3 < n; i += 4) b.writeUInt32LE((this.next() * 4294967296) >>> 0, i);
    for (let i = n - (n % 4); i < n; i++) b[i] = this.int(256);
    return b;
  }
}

export interface Sizes {
  /** How long the cluster sits idle after start before its RSS is read (the idle row). */
  idleMs: number;
  smallFiles: number;
  churnOps: number;
  bigBytes: number;
  scaleFiles: number;
  /**
   * Empty the machine's page cache before each workload (dropPageCache). The short mode, run
   * by `npm test` beside other tests, leaves the machine's cache alone.
   */
  dropPageCache: boolean;
}

export const FULL: Sizes = {
  idleMs: 30_000,
  smallFiles: 1000,
  churnOps: 200,
  bigBytes: 256 * 1024 * 1024,
  scaleFiles: 100_000,
  dropPageCache: true,
};
export const SHORT: Sizes = {
  idleMs: 1000,
  smallFiles: 100,
  churnOps: 20,
  bigBytes: 8 * 1024 * 1024,
  scaleFiles: 2000,
  dropPageCache: false,
};

const TIMEOUT_MS = 600_000;

async function synced(c: BenchCluster, t0: number, what: string): Promise<number> {
  const ms = await until(() => identicalAt(c.dirs[0], c.dirs[2], c.exclude), t0, TIMEOUT_MS, what);
  // Not timed: B is identical too (the relay has it all), and the harness has now hashed B's
  // files, so a later workload's poll does not spend its time on them (d compares B: hashing
  // its copy of b's 256 MiB file in the middle of d's polling put ~0.3 s into d).
  await until(() => identicalAt(c.dirs[0], c.dirs[1], c.exclude), t0, TIMEOUT_MS, `${what} (B)`);
  return ms;
}

/** a: 1000 files of 1–4 KiB in 10 sub-dirs, written on A. */
export async function smallFiles(c: BenchCluster, rng: SeededBytes, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const dir = path.join(c.dirs[0], `d${i % 10}`);
    if (i < 10) await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `f${i}.bin`), rng.bytes(1024 + rng.int(3 * 1024)));
  }
  return synced(c, t0, 'a: small files');
}

/** c: random modify / rename / delete operations on those files. */
export async function churn(c: BenchCluster, rng: SeededBytes, ops: number): Promise<number> {
  const files = [...(await listTree(c.dirs[0], c.exclude)).entries()]
    .filter(([, v]) => v.startsWith('f '))
    .map(([p]) => p);
  const t0 = performance.now();
  for (let i = 0; i < ops && files.length > 0; i++) {
    const k = rng.int(files.length);
    const p = files[k]!;
    const abs = path.join(c.dirs[0], p);
    const op = rng.int(3);
    if (op === 0) await writeFile(abs, rng.bytes(1024 + rng.int(3 * 1024)));
    else if (op === 1) {
      const to = `d${rng.int(10)}/r${i}.bin`;
      await rename(abs, path.join(c.dirs[0], to));
      files[k] = to;
    } else {
      await rm(abs);
      files.splice(k, 1);
    }
  }
  return synced(c, t0, 'c: churn');
}

/** e: rm -rf of the whole tree on A. */
export async function removeAll(c: BenchCluster): Promise<number> {
  const t0 = performance.now();
  for (const n of await readdir(c.dirs[0]))
    if (!c.exclude.includes(n)) await rm(path.join(c.dirs[0], n), { recursive: true });
  return synced(c, t0, 'e: rm -rf');
}

/** b: one large random file copied into A. */
export async function bigFile(
  c: BenchCluster,
  rng: SeededBytes,
  bytes: number,
  scratch: string,
): Promise<number> {
  const src = path.join(scratch, 'big.src');
  const chunk = 16 * 1024 * 1024;
  await writeFile(src, '');
  const { appendFile } = await import('node:fs/promises');
  for (let done = 0; done < bytes; done += chunk)
    await appendFile(src, rng.bytes(Math.min(chunk, bytes - done)));
  // The harness's own source file, written back now (still cached, as a file copied in would
  // be): left dirty, the kernel wrote its 256 MiB out during the timed copy and transfer.
  await flushDirtyPages();
  const t0 = performance.now();
  await copyFile(src, path.join(c.dirs[0], 'big.bin'));
  const ms = await synced(c, t0, 'b: big file');
  await rm(src);
  return ms;
}

/**
 * d: the same file edited on A and on C 10 ms apart; returns [ms, conflict copies per node].
 * Done when all three trees are identical and (if `needConflict`) hold a conflict copy.
 */
export async function concurrentEdit(
  c: BenchCluster,
  rng: SeededBytes,
  needConflict: boolean,
): Promise<[number, number[]]> {
  await writeFile(path.join(c.dirs[0], 'doc.txt'), rng.bytes(2000));
  await synced(c, performance.now(), 'd: setup');
  const t0 = performance.now();
  await writeFile(path.join(c.dirs[0], 'doc.txt'), `A ${rng.int(1e9)}`);
  await new Promise((r) => setTimeout(r, 10));
  await writeFile(path.join(c.dirs[2], 'doc.txt'), `C ${rng.int(1e9)}`);
  const ms = await until(
    async () => {
      // Both looks at once: one after the other, the second's moment came after the first's
      // hashing (B's copy of b's 256 MiB file, new to the harness, put ~0.3 s into d).
      const [ab, ac] = await Promise.all([
        identicalAt(c.dirs[0], c.dirs[1], c.exclude),
        identicalAt(c.dirs[0], c.dirs[2], c.exclude),
      ]);
      if (ab === null || ac === null) return null;
      return !needConflict || (await countConflicts(c.dirs[0], c.exclude)) >= 1
        ? Math.max(ab, ac)
        : null;
    },
    t0,
    TIMEOUT_MS,
    'd: concurrent edit',
  );
  const conflicts = await Promise.all(c.dirs.map((d) => countConflicts(d, c.exclude)));
  return [ms, conflicts];
}

/** s: many small files (0–2 KiB) written on A before the cluster starts. */
export async function writeScaleTree(dir: string, rng: SeededBytes, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const sub = path.join(dir, `s${Math.floor(i / 1000)}`, `t${Math.floor(i / 100) % 10}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    await writeFile(path.join(sub, `f${i}`), rng.bytes(rng.int(2049)));
  }
}
