import {
  chmodSync,
  constants,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { fsyncDir } from '../store/index.js';
import { DownloadFile, readDirect } from './direct-io.js';
import { hashFile, type FileHash } from './hasher.js';
import { readBlockAt, Unreadable, writeSmallSynced } from './localfs.js';

/**
 * The disk port: what the mirror does to a disk, as one interface, so its rules run as well
 * on `MemDisk` (an in-memory tree that fails on demand) as on the real disk. Calls are
 * synchronous, like the moves the applier makes inline (see localfs.ts); errors are thrown
 * with their errno `code`. A call that waits on the device (an fsync, a tree removal) is
 * asynchronous. Everything the mirror does to its tree goes through it, except chokidar's
 * watching and the transfer's downloads and block reads (fast paths of the real disk; the
 * simulator hands over content through the `Content` port instead). The data dir (index,
 * journal, mass-delete marker) is on the store's port.
 */
export interface Disk {
  lstat(abs: string): DiskStat;
  /**
   * lstat, or null when nothing is there (ENOENT), without building an error: most paths the
   * applier looks at before writing them do not exist yet. Other errors are thrown.
   */
  lstatIfAny(abs: string): DiskStat | null;
  readdir(abs: string): string[];
  /** A directory's entries with their types (no stat each). */
  readdirTyped(abs: string): DiskDirent[];
  readlink(abs: string): string;
  /** A small file's whole content (the ignore file); no symlink is followed. */
  readWhole(abs: string): Promise<Buffer>;
  /**
   * A file's hashes (whole and per block) and an fstat of the descriptor after reading it;
   * no symlink followed. The real one streams large files (see hasher.ts).
   */
  hashFile(abs: string, sizeHint: number): Promise<FileHash>;
  /** EEXIST when something is there, unless `recursive` (then parents are made too). */
  mkdir(abs: string, opts?: { recursive?: boolean }): void;
  /** An empty directory only (ENOTEMPTY otherwise). */
  rmdir(abs: string): void;
  rename(from: string, to: string): void;
  symlink(target: string, abs: string): void;
  utimes(abs: string, atime: Date, mtime: Date): void;
  chmod(abs: string, mode: number): void;
  /** Make the directory's entries (renames into it) durable. */
  fsyncDir(abs: string): Promise<void>;
  /** Remove `abs` and everything under it; nothing there is fine. */
  removeTree(abs: string): Promise<void>;
  /**
   * Block `index` (of BLOCK_BYTES) of the file at `abs`, no symlink followed; null when no file
   * opens there or it has no such block. With `stat`, the file's stat after the read. The file
   * is opened in the calling turn (a parent check just before it still holds).
   */
  readBlock(abs: string, index: number, stat: boolean): Promise<BlockRead | null>;
  /** Bytes [offset, offset + length) of a download (at most a block); null if it is shorter. */
  readRange(abs: string, offset: number, length: number): Promise<Buffer | null>;
  /** A download's temp file, made if missing, written a block at a time. */
  openDownload(abs: string): Promise<DownloadSink>;
  /** A file made (or emptied) with `mode`, holding `data`, and fsynced. */
  writeSynced(abs: string, data: Uint8Array, mode: number): Promise<void>;
}

/** A block read from a file, and the file's stat after the read when asked for. */
export interface BlockRead {
  data: Buffer;
  statAfter: DiskStat | null;
}

/** A download's temp file, open for writes at block offsets. */
export interface DownloadSink {
  /** Whether writes bypass the page cache (the real side's O_DIRECT; see direct-io.ts). */
  readonly direct: boolean;
  /** Bytes in the file now (an interrupted download of the same version left some). */
  size(): Promise<number>;
  /** Write `data` (at most a block) at `position` (a multiple of BLOCK_BYTES). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Start writing back what was written (so the final sync has less left to do). */
  datasync(): Promise<void>;
  truncate(size: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
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
  dev: number;
}

/** A directory entry and its type. */
export interface DiskDirent {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** The real disk (node:fs). */
export const realDisk: Disk = {
  lstat: (abs) => lstatSync(abs),
  lstatIfAny: (abs) => lstatSync(abs, { throwIfNoEntry: false }) ?? null,
  readdir: (abs) => readdirSync(abs),
  readdirTyped: (abs) => readdirSync(abs, { withFileTypes: true }),
  readlink: (abs) => readlinkSync(abs),
  readWhole: async (abs) => {
    const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  },
  hashFile: (abs, sizeHint) => hashFile(abs, sizeHint),
  mkdir: (abs, opts) => void mkdirSync(abs, opts),
  rmdir: (abs) => rmdirSync(abs),
  rename: (from, to) => renameSync(from, to),
  symlink: (target, abs) => symlinkSync(target, abs),
  utimes: (abs, atime, mtime) => utimesSync(abs, atime, mtime),
  chmod: (abs, mode) => chmodSync(abs, mode),
  fsyncDir: (abs) => fsyncDir(abs),
  removeTree: (abs) => rm(abs, { recursive: true, force: true }),
  readBlock: (abs, index, stat) => readBlockAt(abs, index, stat),
  readRange: (abs, offset, length) => readDirect(abs, offset, length),
  openDownload: (abs) => DownloadFile.open(abs),
  writeSynced: (abs, data, mode) => writeSmallSynced(abs, data, mode),
};

/** `abs`'s lstat, or null when nothing is there (or it cannot be looked at). */
export function lstatOr(disk: Disk, abs: string): DiskStat | null {
  try {
    return disk.lstatIfAny(abs);
  } catch {
    return null;
  }
}

/** Errors that say a path is not there; any other error says nothing about it. */
const GONE = new Set(['ENOENT', 'ENOTDIR']);

/**
 * lstat, telling "not there" (null) from "cannot tell" (Unreadable): a directory we may not
 * enter must never read as its files being deleted.
 */
export function lstatOrUnknown(disk: Disk, abs: string): DiskStat | null | Unreadable {
  try {
    return disk.lstatIfAny(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    return GONE.has(code) ? null : new Unreadable(code);
  }
}
