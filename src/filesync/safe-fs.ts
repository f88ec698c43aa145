import { lstatSync, mkdirSync } from 'node:fs';
import { lstatOrNull } from './localfs.js';
import { absPath } from './paths.js';
import path from 'node:path';

export class UnsafePathError extends Error {}

/**
 * Make sure every parent of `rel` under `root` is a real directory (created if missing), never
 * a symlink: a remote change must not be written through a link to somewhere else.
 */
export function ensureRealParents(root: string, rel: string): void {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = absPath(cur, part);
    let st = lstatOrNull(cur);
    if (st === null) {
      try {
        mkdirSync(cur);
      } catch (e) {
        // Made by someone else in between: fine, it is checked just below.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      st = lstatSync(cur);
    }
    if (st.isSymbolicLink())
      throw new UnsafePathError(`parent ${path.relative(root, cur)} is a symlink`);
    if (!st.isDirectory())
      throw new UnsafePathError(`parent ${path.relative(root, cur)} is not a directory`);
  }
}

/** True when no parent of `rel` under `root` is a symlink (missing parents are fine). */
export function parentsAreReal(root: string, rel: string): boolean {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = absPath(cur, part);
    const st = lstatOrNull(cur);
    if (st === null) return true;
    if (st.isSymbolicLink() || !st.isDirectory()) return false;
  }
  return true;
}
