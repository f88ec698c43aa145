import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, type Dirent } from 'node:fs';
import path from 'node:path';

/** A tree as the benchmarks compare it: path → type, size, mode (and SHA-256 on demand). */
export type Listing = Map<string, string>;

/** Run `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(
  items: T[],
  limit: number,
  fn: (x: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Hashes of large files in flight at once (small ones are read inline, see below). */
const PARALLEL = 16;

/** Not content: an excluded path, or one of Syncthing's temp files (it leaves some a while). */
function skipped(p: string, name: string, exclude: readonly string[]): boolean {
  return exclude.includes(p) || /^(\.syncthing\.|~syncthing~).*\.tmp$/.test(name);
}

/**
 * The harness uses synchronous stats and small reads: on these VMs a thread-pool round trip
 * costs 30–90 µs of CPU, the call itself 2–8 µs, and the final look at two 100,000-file trees
 * took 17 s with promises (taken from the nodes under test, and added to the s time).
 */
export async function listTree(root: string, exclude: readonly string[]): Promise<Listing> {
  const out: Listing = new Map();
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(path.join(root, rel));
    } catch {
      return;
    }
    const dirs: string[] = [];
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      if (skipped(p, n, exclude)) continue;
      const st = lstatSync(path.join(root, p), { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (st.isDirectory()) {
        out.set(p, `d ${st.mode & 0o777}`);
        dirs.push(p);
      } else if (st.isFile()) out.set(p, `f ${st.size} ${st.mode & 0o777} ${st.mtimeMs}`);
      else if (st.isSymbolicLink()) out.set(p, 'l');
    }
    await new Promise((r) => setImmediate(r)); // one directory per turn: timers still fire
    for (const d of dirs) await walk(d);
  };
  await walk('');
  return out;
}

/** abs path → [size mode mtime, sha256]: a file is hashed again only when it changed. */
const hashCache = new Map<string, [string, string]>();

/** Files up to this size are read whole; larger ones are streamed (and can be given up). */
const SMALL_FILE_BYTES = 4 * 1048576;

const sizeOf = (stamp: string): number => Number(stamp.split(' ')[1]);

/** SHA-256 of the file, or null when `stop()` said to give up part-way (nothing cached). */
async function sha(abs: string, stamp: string, stop: () => boolean): Promise<string | null> {
  const hit = hashCache.get(abs);
  if (hit && hit[0] === stamp) return hit[1];
  const h = createHash('sha256');
  if (sizeOf(stamp) <= SMALL_FILE_BYTES) h.update(readFileSync(abs));
  else
    for await (const c of createReadStream(abs)) {
      if (stop()) return null;
      h.update(c as Buffer);
    }
  const digest = h.digest('hex');
  hashCache.set(abs, [stamp, digest]);
  return digest;
}

/** Listing value without the mtime (which legitimately differs between replicas). */
const shape = (v: string): string => (v.startsWith('f ') ? v.split(' ').slice(0, 3).join(' ') : v);

/** Names and types only (readdir, no stat): the cheap first look while polling. */
async function namesOf(root: string, exclude: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  const walk = async (rel: string): Promise<void> => {
    let ents: Dirent[];
    try {
      ents = readdirSync(path.join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (skipped(p, e.name, exclude)) continue;
      out.add(`${e.isDirectory() ? 'd' : e.isFile() ? 'f' : 'o'} ${p}`);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk('');
  return out;
}

/**
 * How many paths the tree holds (readdir only, nothing kept): a poll's first look at a large
 * tree, about a quarter of the CPU of comparing two trees' names.
 */
export function entryCount(root: string, exclude: readonly string[], rel = ''): number {
  let ents: Dirent[];
  try {
    ents = readdirSync(path.join(root, rel), { withFileTypes: true });
  } catch {
    return 0;
  }
  let n = 0;
  for (const e of ents) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (skipped(p, e.name, exclude)) continue;
    n++;
    if (e.isDirectory()) n += entryCount(root, exclude, p);
  }
  return n;
}

/**
 * Same paths, types, sizes, modes and SHA-256. Polled, so it is cheap while the trees differ:
 * names first, then stats, and hashes only once everything else agrees (the poller's CPU is
 * taken from the systems under test on a 2-core machine).
 *
 * Returns when the trees were seen to be identical: the moment names and stats agreed, in the
 * look whose hashes then agreed too (null while they differ). Both systems land a file by
 * renaming a finished temp file into place, so a file with the right name, size and mode is
 * already its final content; the hashing that follows only confirms that, and at 256 MiB or
 * 100,000 files it takes the harness 0.5-7 s that are not the systems' time.
 */
export async function identicalAt(
  a: string,
  b: string,
  exclude: readonly string[],
): Promise<number | null> {
  const [na, nb] = await Promise.all([namesOf(a, exclude), namesOf(b, exclude)]);
  if (na.size !== nb.size) return null;
  for (const n of na) if (!nb.has(n)) return null;
  const [la, lb] = await Promise.all([listTree(a, exclude), listTree(b, exclude)]);
  if (la.size !== lb.size) return null;
  for (const [p, v] of la) if (shape(lb.get(p) ?? '') !== shape(v)) return null;
  const agreedAt = performance.now();
  let same = true;
  const stop = (): boolean => !same;
  const compare = async ([p, v]: [string, string]): Promise<void> => {
    if (!same) return;
    // A file can vanish between listing and hashing (a rename in flight): not identical yet.
    const [ha, hb] = await Promise.all([
      sha(path.join(a, p), v, stop).catch(() => 'a'),
      sha(path.join(b, p), lb.get(p)!, stop).catch(() => 'b'),
    ]);
    if (ha === null || hb === null || ha !== hb) same = false;
  };
  // Small files first, large ones only if those all agree: a look taken while one small file
  // still differs must not spend the next second hashing a 256 MiB file it has not seen yet
  // (that cost the harness's poll, not the system, ~0.3 s of d after b).
  const files = [...la].filter(([, v]) => v.startsWith('f '));
  await eachLimited(
    files.filter(([, v]) => sizeOf(v) <= SMALL_FILE_BYTES),
    PARALLEL,
    compare,
  );
  await eachLimited(
    files.filter(([, v]) => sizeOf(v) > SMALL_FILE_BYTES),
    PARALLEL,
    compare,
  );
  return same ? agreedAt : null;
}

export async function countConflicts(root: string, exclude: readonly string[]): Promise<number> {
  let n = 0;
  for (const p of (await listTree(root, exclude)).keys()) if (/\.sync-conflict-/.test(p)) n++;
  return n;
}

/** Poll until `cond` holds; returns the elapsed ms since `t0`. Throws after `timeoutMs`. */
/**
 * Poll `cond` until it holds; ms from `t0` to when it held (the time `cond` gives, else now).
 */
export async function until(
  cond: () => Promise<boolean | number | null>,
  t0: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  for (;;) {
    const held = await cond();
    if (held !== false && held !== null) return (held === true ? performance.now() : held) - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
