import { writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from './fsutil.js';

/**
 * The store's disk port: every call WaveKV's durability makes, so the same WAL, snapshot and
 * identity code runs on the real disk and on `MemStoreDisk` (which loses what was not synced
 * when the simulator crashes a node). Errors carry their errno `code`, as node:fs throws them.
 */
export interface StoreDisk {
  /** Make `dir` and its parents; one that exists is fine. */
  mkdirp(dir: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  /** The whole file; ENOENT when it is not there. */
  readFile(file: string): Promise<Buffer>;
  /** Open for writing: 'w' creates or empties it, 'wx' creates it and fails if it exists. */
  open(file: string, flags: 'w' | 'wx', mode?: number): Promise<StoreFile>;
  rename(from: string, to: string): Promise<void>;
  /** Remove a file; nothing there is fine. */
  remove(file: string): Promise<void>;
  truncate(file: string, bytes: number): Promise<void>;
  /** Make the directory's entries (creates, renames, removes in it) durable. */
  fsyncDir(dir: string): Promise<void>;
  /** Make a file's bytes durable (one already written and closed, say by a dead process). */
  syncFile(file: string): Promise<void>;
}

/** A file open for writing. Nothing written is durable before `sync` resolves. */
export interface StoreFile {
  /** Write `bufs` one after another at `position`; resolves to the bytes written. */
  writev(bufs: readonly Buffer[], position: number): Promise<number>;
  /** Write `data` after what this handle wrote before (from 0 on a fresh handle). */
  append(data: Uint8Array): Promise<void>;
  /**
   * `append`, made inline: handed to the kernel when it returns (a write into the page cache
   * takes microseconds; a trip through the thread pool waits behind every queued fsync). Not
   * to be mixed with `append` on one handle.
   */
  appendSync(data: Uint8Array): void;
  /** fsync: data and metadata. */
  sync(): Promise<void>;
  /** fdatasync: data, and the metadata needed to read it back (the WAL's group commits). */
  datasync(): Promise<void>;
  chmod(mode: number): Promise<void>;
  close(): Promise<void>;
}

/** The real disk (node:fs). */
export const nodeStoreDisk: StoreDisk = {
  mkdirp: async (dir) => void (await mkdir(dir, { recursive: true })),
  readdir: (dir) => readdir(dir),
  readFile: (file) => readFile(file),
  open: async (file, flags, mode) => {
    const fh = await open(file, flags, mode);
    return {
      writev: async (bufs, position) => (await fh.writev(bufs as Buffer[], position)).bytesWritten,
      append: (data) => fh.writeFile(data),
      appendSync: (data) => {
        for (let done = 0; done < data.length;)
          done += writeSync(fh.fd, data, done, data.length - done);
      },
      sync: () => fh.sync(),
      datasync: () => fh.datasync(),
      chmod: (m) => fh.chmod(m),
      close: () => fh.close(),
    };
  },
  rename: (from, to) => rename(from, to),
  remove: (file) => rm(file, { force: true }),
  truncate: (file, bytes) => truncate(file, bytes),
  fsyncDir: (dir) => fsyncDir(dir),
  syncFile: async (file) => {
    const fh = await open(file, 'r+');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  },
};

/** Appends bytes to the file being written (each call's bytes after the previous call's). */
export type WriteChunk = (bytes: Uint8Array) => Promise<void>;

/**
 * Write a file so that readers see either the old content or the whole new one. `data` is the
 * content, or a function that writes it in pieces (a large file need not be one buffer).
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | ((write: WriteChunk) => Promise<void>),
  mode = 0o666,
  disk: StoreDisk = nodeStoreDisk,
): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await disk.open(tmp, 'w', mode);
  try {
    // A tmp left by a crash keeps its old mode: a key file must not stay readable by others.
    if (mode !== 0o666) await fh.chmod(mode);
    if (data instanceof Uint8Array) await fh.append(data);
    else await data((bytes) => fh.append(bytes));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await disk.rename(tmp, file);
  await disk.fsyncDir(path.dirname(file));
}
