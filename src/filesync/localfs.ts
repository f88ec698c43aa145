import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  open as openCb,
  openSync,
  read,
  readSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { promisify } from 'node:util';
import { fsyncFd } from '../store/index.js';
import { BLOCK_BYTES } from './record.js';

const readAsync = promisify(read);
const openAsync = promisify(openCb);

/**
 * Metadata calls and small reads made inline (the *Sync forms), fsyncs and large data I/O kept
 * asynchronous. Why: on a local disk a metadata call returns in microseconds, while a round trip
 * through libuv's thread pool costs far more CPU than the call itself. Measured on our 2-core
 * VMs (bench/, median of 5000 calls): lstat inline 4–8 µs of CPU against 32–58 µs through
 * fs/promises, a missing path 1–2 µs against 73–88 µs (the rejected promise builds an Error).
 * With tens of such calls per received file, the thread-pool hops were the mirror's largest
 * CPU cost. A call that may wait on the device (fsync, reads past SMALL_READ_BYTES) stays async
 * so one slow disk never stalls the sockets.
 */

/** Reads at most this large are done inline. */
export const SMALL_READ_BYTES = 64 * 1024;

/** lstat, or null when the path cannot be stat'ed (missing, a parent not a dir, no access). */
export function lstatOrNull(abs: string): Stats | null {
  try {
    return lstatSync(abs, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** A small file's bytes and an fstat of the descriptor taken after reading them. */
export interface SmallFile {
  data: Buffer;
  statAfter: Stats;
}

/**
 * The whole file when it is `expectBytes` long or shorter (no symlink followed), else null: the
 * caller falls back to streaming. One read of one byte more than expected, then an fstat of the
 * same descriptor: a file that grew fills the buffer, and any change during the read shows in
 * the fstat's size or mtime. Four syscalls; a loop reading to EOF and an fstat first made six.
 */
export function readSmallFile(abs: string, expectBytes: number): SmallFile | null {
  if (expectBytes > SMALL_READ_BYTES) return null;
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(expectBytes + 1);
    const filled = readSync(fd, buf, 0, buf.length, 0);
    if (filled === buf.length) return null; // longer than expected: stream it instead
    const statAfter = fstatSync(fd);
    // A short read is the end of a regular file; should one come early, stream instead.
    if (statAfter.size !== filled) return null;
    return { data: buf.subarray(0, filled), statAfter };
  } finally {
    closeSync(fd);
  }
}

/** A block and, when asked for, an fstat of its descriptor taken after the read. */
export interface BlockRead {
  data: Buffer;
  statAfter: Stats | null;
}

/**
 * Block `index` of the file at `abs` (no symlink followed), or null when it cannot be opened or
 * has no such block; with `stat`, an fstat after the read (one more syscall). The buffer is the
 * block's own length (small files are the common case: never a whole BLOCK_BYTES each); small
 * blocks are read inline, large ones off the event loop.
 */
export async function readBlockAt(
  abs: string,
  index: number,
  stat: boolean,
): Promise<BlockRead | null> {
  let fd;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const offset = index * BLOCK_BYTES;
    const st = fstatSync(fd);
    // A directory opens too (a path that was a file and is a directory now): no blocks there.
    if (!st.isFile()) return null;
    const want = Math.min(BLOCK_BYTES, st.size - offset);
    if (want <= 0) return null;
    const buf = Buffer.allocUnsafe(want);
    let filled = 0;
    while (filled < want) {
      const n =
        want <= SMALL_READ_BYTES
          ? readSync(fd, buf, filled, want - filled, offset + filled)
          : (await readAsync(fd, buf, filled, want - filled, offset + filled)).bytesRead;
      if (n === 0) break;
      filled += n;
    }
    return { data: buf.subarray(0, filled), statAfter: stat ? fstatSync(fd) : null };
  } finally {
    closeSync(fd);
  }
}

/**
 * A small file created (or emptied) with `mode` and `data`, fsynced. Opened off the loop:
 * creating a file waits on the journal, behind other files' fsyncs; the write is inline.
 */
export async function writeSmallSynced(abs: string, data: Uint8Array, mode: number): Promise<void> {
  const fd = await openAsync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
  try {
    for (let done = 0; done < data.length;)
      done += writeSync(fd, data, done, data.length - done, done);
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** A path that exists or may exist but cannot be looked at (EACCES, EPERM, EIO, …). */
export class Unreadable {
  constructor(readonly code: string) {}
}

/** Whether an error reading a path means it cannot be read (as opposed to gone or changing). */
export function isUnreadableError(e: unknown): string | null {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EIO' ? code : null;
}

/** Paths this node cannot read, with why; each logged once per cause. Bounded. */
export class UnreadablePaths {
  private readonly paths = new Map<string, string>();

  constructor(
    private readonly onNew: (rel: string, code: string) => void,
    private readonly max = 10_000,
  ) {}

  note(rel: string, code: string): void {
    if (this.paths.get(rel) === code) return;
    if (!this.paths.has(rel) && this.paths.size >= this.max) return; // counted up to the bound
    this.paths.set(rel, code);
    this.onNew(rel, code);
  }

  readable(rel: string): void {
    this.paths.delete(rel);
  }

  /** Whether `rel` is at or under an unreadable directory noted here. */
  covers(rel: string): boolean {
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1))
      if (this.paths.has(rel.slice(0, i))) return true;
    return this.paths.has(rel);
  }

  get size(): number {
    return this.paths.size;
  }
}
