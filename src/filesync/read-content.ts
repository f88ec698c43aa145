/**
 * Owns: reading what a peer needs of a path's content, for the scanner: a file's hashes (its
 * bytes too when small), a symlink's target, and whether the file moved while it was read.
 * Must not touch: the index or the KV.
 */
import type { Ctx } from './context.js';
import type { DiskStat } from './disk.js';
import { isUnreadableError } from './localfs.js';
import type { FileType } from './record.js';

/** What a peer needs of a path's content, as read by a check. */
export interface Content {
  hash: string;
  blocks: string[];
  target: string | null;
  size: number;
  /** A small file's bytes as hashed (served from memory for a while: keepPublished). */
  data: Buffer | null;
}

/**
 * What a peer needs of the path's content: a file's hashes (and its bytes when small), a
 * symlink's target. 'changing' when the file moved while it was read.
 */
export async function readContent(
  ctx: Ctx,
  rel: string,
  abs: string,
  st: DiskStat,
  type: Exclude<FileType, 'deleted'>,
): Promise<Content | 'unreadable' | 'changing'> {
  if (type === 'symlink') {
    const target = ctx.disk.readlink(abs);
    return { hash: '', blocks: [], target, size: Buffer.byteLength(target), data: null };
  }
  if (type !== 'file') return { hash: '', blocks: [], target: null, size: 0, data: null };
  let unreadable: string | null = null;
  const h = await ctx.disk.hashFile(abs, st.size).catch((e: unknown) => {
    unreadable = isUnreadableError(e);
    return null;
  });
  if (unreadable !== null) {
    ctx.unreadable.note(rel, unreadable);
    return 'unreadable';
  }
  // The descriptor's own stat after the read (no second lookup of the path): the same inode
  // as the lstat that found it through real parents (dev and inode), unchanged while it was
  // read. A parent swapped for a symlink before the open would give another file.
  const after = h?.statAfter;
  if (
    h === null ||
    after?.ino !== st.ino ||
    after.dev !== st.dev ||
    after.size !== h.size ||
    after.mtimeMs !== st.mtimeMs
  )
    return 'changing';
  return { hash: h.hash, blocks: h.blocks, target: null, size: h.size, data: h.data ?? null };
}
