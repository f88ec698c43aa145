import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  renameSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';

/**
 * The disk port: what the mirror does to a disk, as one interface, so its rules run as well
 * on `MemDisk` (an in-memory tree that fails on demand) as on the real disk. Calls are
 * synchronous, like the moves the applier makes inline (see localfs.ts); errors are thrown
 * with their errno `code`. Being moved behind it module by module: type clashes first.
 */
export interface Disk {
  lstat(abs: string): DiskStat;
  readdir(abs: string): string[];
  mkdir(abs: string): void;
  rename(from: string, to: string): void;
  symlink(target: string, abs: string): void;
  utimes(abs: string, atime: Date, mtime: Date): void;
  chmod(abs: string, mode: number): void;
}

/** What the mirror reads of an lstat. */
export interface DiskStat {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  mode: number;
  mtimeMs: number;
  size: number;
  ino: number;
}

/** The real disk (node:fs). */
export const realDisk: Disk = {
  lstat: (abs) => lstatSync(abs),
  readdir: (abs) => readdirSync(abs),
  mkdir: (abs) => void mkdirSync(abs),
  rename: (from, to) => renameSync(from, to),
  symlink: (target, abs) => symlinkSync(target, abs),
  utimes: (abs, atime, mtime) => utimesSync(abs, atime, mtime),
  chmod: (abs, mode) => chmodSync(abs, mode),
};

/** `abs`'s lstat, or null when nothing is there (or it cannot be looked at). */
export function lstatOr(disk: Disk, abs: string): DiskStat | null {
  try {
    return disk.lstat(abs);
  } catch {
    return null;
  }
}
