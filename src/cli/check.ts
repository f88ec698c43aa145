import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, opendir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { IgnoreRules } from '../filesync/ignore.js';
import { pathProblem } from '../filesync/paths.js';

/** What `check` compares per path: type, size, permission bits, SHA-256 or link target. */
interface Fingerprint {
  type: 'file' | 'dir' | 'symlink';
  size: number;
  mode: number;
  digest: string;
}

export interface Difference {
  path: string;
  /** dir → its fingerprint, or null when the path is missing there. */
  sides: Record<string, string | null>;
}

async function sha256File(abs: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(abs)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function fingerprints(
  root: string,
  skipConflicts: boolean,
  ignore: readonly string[],
): Promise<Map<string, Fingerprint>> {
  const out = new Map<string, Fingerprint>();
  // What the node leaves out, this leaves out: its .filesyncignore, --ignore, unsafe names.
  const rules = new IgnoreRules(root, ignore);
  await rules.reload();
  const walk = async (dir: string): Promise<void> => {
    for await (const d of await opendir(path.join(root, dir))) {
      const rel = dir ? `${dir}/${d.name}` : d.name;
      if (pathProblem(rel) !== null || rules.ignores(rel, d.isDirectory())) continue;
      if (skipConflicts && /\.sync-conflict-\d+-\d+/.test(d.name)) continue;
      const abs = path.join(root, rel);
      const st = await lstat(abs);
      if (st.isDirectory()) {
        out.set(rel, { type: 'dir', size: 0, mode: st.mode & 0o777, digest: '' });
        await walk(rel);
      } else if (st.isFile()) {
        out.set(rel, {
          type: 'file',
          size: st.size,
          mode: st.mode & 0o777,
          digest: await sha256File(abs),
        });
      } else if (st.isSymbolicLink()) {
        out.set(rel, { type: 'symlink', size: 0, mode: 0, digest: await readlink(abs) });
      }
    }
  };
  await walk('');
  return out;
}

const show = (f: Fingerprint | undefined): string | null =>
  f === undefined
    ? null
    : f.type === 'file'
      ? `file ${f.size} B mode ${f.mode.toString(8)} sha256 ${f.digest.slice(0, 16)}`
      : f.type === 'dir'
        ? `dir mode ${f.mode.toString(8)}`
        : `symlink → ${f.digest}`;

/** Compare directory trees; the list is empty when they are identical. */
export async function compareDirs(
  dirs: string[],
  opts: { skipConflicts?: boolean; ignore?: readonly string[] } = {},
): Promise<Difference[]> {
  const maps = await Promise.all(
    dirs.map((d) => fingerprints(d, opts.skipConflicts ?? false, opts.ignore ?? [])),
  );
  const all = new Set<string>();
  for (const m of maps) for (const k of m.keys()) all.add(k);
  const diffs: Difference[] = [];
  for (const p of [...all].sort()) {
    const shown = maps.map((m) => show(m.get(p)));
    if (shown.every((s) => s === shown[0])) continue;
    diffs.push({ path: p, sides: Object.fromEntries(dirs.map((d, i) => [d, shown[i]!])) });
  }
  return diffs;
}
