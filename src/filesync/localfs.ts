import {
  closeSync,
  constants,
  fstatSync,
  fsync,
  lstatSync,
  openSync,
  readSync,
  type Stats,
} from 'node:fs';

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

/** fsync of an open descriptor, off the event loop. */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
}

/**
 * The whole file if it is at most `maxBytes` long (no symlink followed), else null: the caller
 * falls back to streaming. One more byte is asked for than the size said, so growth is seen.
 */
export function readSmallFile(abs: string, maxBytes = SMALL_READ_BYTES): Buffer | null {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) return null;
    const buf = Buffer.allocUnsafe(size + 1);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, buf, filled, buf.length - filled, filled);
      if (n === 0) break;
      filled += n;
      if (filled === buf.length) return null; // grew while we read it: stream it instead
    }
    return buf.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}
