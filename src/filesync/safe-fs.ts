import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';

export class UnsafePathError extends Error {}

/**
 * Make sure every parent of `rel` under `root` is a real directory (created if missing), never
 * a symlink: a remote change must not be written through a link to somewhere else.
 */
export async function ensureRealParents(root: string, rel: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = path.join(cur, part);
    let st = await lstat(cur).catch(() => null);
    if (st === null) {
      // Another apply may create the same parent at the same moment: that is fine.
      await mkdir(cur).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      st = await lstat(cur);
    }
    if (st.isSymbolicLink())
      throw new UnsafePathError(`parent ${path.relative(root, cur)} is a symlink`);
    if (!st.isDirectory())
      throw new UnsafePathError(`parent ${path.relative(root, cur)} is not a directory`);
  }
}

/** True when no parent of `rel` under `root` is a symlink (missing parents are fine). */
export async function parentsAreReal(root: string, rel: string): Promise<boolean> {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = path.join(cur, part);
    try {
      const st = await lstat(cur);
      if (st.isSymbolicLink() || !st.isDirectory()) return false;
    } catch {
      return true;
    }
  }
  return true;
}
