/**
 * Owns: what a stat means to the mirror: a path's synced type, its permission bits, and whether
 * it still matches what the index hashed. Pure: no disk access.
 */
import type { DiskStat } from './disk.js';
import type { IndexEntry } from './disk-index.js';
import type { FileType } from './record.js';

export function typeOf(st: DiskStat): Exclude<FileType, 'deleted'> | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return null; // sockets, fifos, devices: not synced
}

/** Permission bits only: setuid, setgid and sticky never travel. */
export function permBits(mode: number): number {
  return mode & 0o777;
}

/** Whether a path's stat still matches what the index says was hashed (no need to hash again). */
export function unchanged(idx: IndexEntry, st: DiskStat, type: string): boolean {
  return (
    idx.type === type &&
    idx.size === st.size &&
    idx.mtimeMs === st.mtimeMs &&
    idx.ino === st.ino &&
    idx.mode === permBits(st.mode)
  );
}

/**
 * Does a path hold a file or link the index does not know as it is (made or changed since it
 * was indexed)? No entry: anything there is new. A directory is never new content.
 */
export function notIndexed(st: DiskStat | null, idx: IndexEntry | undefined): boolean {
  if (st === null || st.isDirectory()) return false;
  return idx === undefined || !unchanged(idx, st, typeOf(st) ?? 'other');
}
