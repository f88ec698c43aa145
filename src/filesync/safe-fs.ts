import path from 'node:path';
import { lstatOr, type Disk } from './disk.js';
import { absPath } from './paths.js';

export class UnsafePathError extends Error {}

/**
 * Make sure every parent of `rel` under `root` is a real directory (created if missing), never
 * a symlink: a remote change must not be written through a link to somewhere else.
 */
export function ensureRealParents(disk: Disk, root: string, rel: string): void {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = absPath(cur, part);
    let st = lstatOr(disk, cur);
    if (st === null) {
      try {
        disk.mkdir(cur);
      } catch (e) {
        // Made by someone else in between: fine, it is checked just below.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      st = disk.lstat(cur);
    }
    if (st.isSymbolicLink())
      throw new UnsafePathError(`parent ${path.relative(root, cur)} is a symlink`);
    if (!st.isDirectory())
      throw new UnsafePathError(`parent ${path.relative(root, cur)} is not a directory`);
  }
}

/** How long a parent directory checked real is trusted without a fresh lstat. */
const PARENT_TRUST_MS = 1000;
/** Checked parents remembered at most (cleared when full). */
const MAX_TRUSTED_PARENTS = 10_000;

/**
 * The check every path operation makes right before it touches the disk, in the same turn of
 * the event loop (so none of this node's own applies can swap a parent for a symlink between
 * the check and the operation): no parent of the path is a symlink or anything but a directory.
 * Parents found real are trusted for PARENT_TRUST_MS (a start scan would lstat every directory
 * once per file otherwise); `forget` drops that trust whenever this node removes or replaces
 * something.
 */
export class RealParents {
  private readonly trusted = new Map<string, number>();

  constructor(
    private readonly root: string,
    private readonly disk: Disk,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when no parent of `rel` is a symlink or a non-directory (missing ones are fine). */
  ok(rel: string, nowMs = this.now()): boolean {
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      const dir = rel.slice(0, i);
      const at = this.trusted.get(dir);
      if (at !== undefined && nowMs - at <= PARENT_TRUST_MS) continue;
      const st = lstatOr(this.disk, absPath(this.root, dir));
      if (st === null) return true; // nothing below a missing directory exists either
      if (!st.isDirectory()) return false; // lstat: a symlink is not a directory
      if (this.trusted.size >= MAX_TRUSTED_PARENTS) this.trusted.clear();
      this.trusted.set(dir, nowMs);
    }
    return true;
  }

  /** Throw UnsafePathError unless `ok(rel)`. */
  assert(rel: string): void {
    if (!this.ok(rel))
      throw new UnsafePathError(`a parent of ${rel} is a symlink or not a directory`);
  }

  forget(): void {
    this.trusted.clear();
  }
}
