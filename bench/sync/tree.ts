import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

/** A tree as the benchmarks compare it: path → type, size, mode (and SHA-256 on demand). */
export type Listing = Map<string, string>;

export async function listTree(root: string, exclude: readonly string[]): Promise<Listing> {
  const out: Listing = new Map();
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(path.join(root, rel)).catch(() => [] as string[]);
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      // Syncthing's own temp files (it leaves some behind for a while) are not content.
      if (exclude.includes(p) || /^(\.syncthing\.|~syncthing~).*\.tmp$/.test(n)) continue;
      const st = await lstat(path.join(root, p)).catch(() => null);
      if (st === null) continue;
      if (st.isDirectory()) {
        out.set(p, `d ${st.mode & 0o777}`);
        await walk(p);
      } else if (st.isFile()) out.set(p, `f ${st.size} ${st.mode & 0o777} ${st.mtimeMs}`);
      else if (st.isSymbolicLink()) out.set(p, 'l');
    }
  };
  await walk('');
  return out;
}

/** abs path → [size mode mtime, sha256]: a file is hashed again only when it changed. */
const hashCache = new Map<string, [string, string]>();

async function sha(abs: string, stamp: string): Promise<string> {
  const hit = hashCache.get(abs);
  if (hit && hit[0] === stamp) return hit[1];
  const h = createHash('sha256');
  for await (const c of createReadStream(abs)) h.update(c as Buffer);
  const digest = h.digest('hex');
  hashCache.set(abs, [stamp, digest]);
  return digest;
}

/** Listing value without the mtime (which legitimately differs between replicas). */
const shape = (v: string): string => (v.startsWith('f ') ? v.split(' ').slice(0, 3).join(' ') : v);

/** Same paths, types, sizes, modes and SHA-256 (hashed only once the cheap listing agrees). */
export async function identical(
  a: string,
  b: string,
  exclude: readonly string[],
): Promise<boolean> {
  const [la, lb] = await Promise.all([listTree(a, exclude), listTree(b, exclude)]);
  if (la.size !== lb.size) return false;
  for (const [p, v] of la) if (shape(lb.get(p) ?? '') !== shape(v)) return false;
  for (const [p, v] of la) {
    if (!v.startsWith('f ')) continue;
    // A file can vanish between listing and hashing (a rename in flight): not identical yet.
    const [ha, hb] = await Promise.all([
      sha(path.join(a, p), v).catch(() => 'a'),
      sha(path.join(b, p), lb.get(p)!).catch(() => 'b'),
    ]);
    if (ha !== hb) return false;
  }
  return true;
}

export async function countConflicts(root: string, exclude: readonly string[]): Promise<number> {
  let n = 0;
  for (const p of (await listTree(root, exclude)).keys()) if (/\.sync-conflict-/.test(p)) n++;
  return n;
}

/** Poll until `cond` holds; returns the elapsed ms since `t0`. Throws after `timeoutMs`. */
export async function until(
  cond: () => Promise<boolean>,
  t0: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  for (;;) {
    if (await cond()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
