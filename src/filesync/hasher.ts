import { createHash, hash as oneShotHash, webcrypto } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ByteBudget } from './byte-budget.js';
import type { DiskStat } from './disk.js';
import { readSmallFile } from './localfs.js';
import { BLOCK_BYTES } from './record.js';

export interface ContentHash {
  size: number;
  hash: string;
  /** Per-block hashes when the file is larger than one block. */
  blocks: string[];
}

/** A file's hash and an fstat of the descriptor it was read through, taken after the read. */
export interface FileHash extends ContentHash {
  statAfter: DiskStat;
  /** The bytes hashed, for a file small enough to be read whole (see Transfer.keepPublished). */
  data?: Buffer;
}

const { subtle } = webcrypto;
/** Block hashes in flight on the thread pool while a large file is read. */
const HASH_AHEAD = 4;
const toHex = (b: ArrayBuffer): string => Buffer.from(b).toString('hex');

/** One-shot: ~0.6 µs and a Hash object less per call than createHash (one call per file). */
export function sha256(data: Uint8Array): string {
  return oneShotHash('sha256', data, 'hex');
}

/**
 * Bytes of buffers the streaming hashes of one process may hold at once. Each holds a read
 * buffer (a block at most) and up to HASH_AHEAD copies of it, and a scan checks hundreds of
 * paths at once: 100 files of 4 MiB took a node to 314 MiB RSS. Reading and hashing are disk-
 * and CPU-bound, so two large files at a time lose no speed; files of a few hundred KiB still
 * go dozens at a time.
 */
export const HASHING_MAX_BYTES = 16 * 1024 * 1024;
const hashing = new ByteBudget(HASHING_MAX_BYTES);

/** Buffer bytes the streaming hashes hold now (tests). */
export function hashingBytesInFlight(): number {
  return hashing.held;
}

/** What a streaming hash of a file of about `sizeBytes` holds at most. */
function hashingCost(sizeBytes: number): number {
  return Math.min(sizeBytes + 1, BLOCK_BYTES) * (HASH_AHEAD + 2);
}

/**
 * Hash a file by streaming it block by block: memory stays a few blocks whatever the size.
 * Opened with O_NOFOLLOW so a symlink swapped in is not followed. `sizeHint` is the size a stat
 * the caller already made saw: a small file is then read in one inline read (see localfs.ts for
 * why), a large one skips that attempt, and its buffers are counted against HASHING_MAX_BYTES
 * at this size. A wrong hint costs time or that bound, never the answer.
 */
export async function hashFile(absPath: string, sizeHint = 0): Promise<FileHash> {
  const small = readSmallFile(absPath, sizeHint);
  if (small !== null) {
    const { data, statAfter } = small;
    return { size: data.length, hash: sha256(data), blocks: [], statAfter, data };
  }
  const release = await hashing.acquire(hashingCost(sizeHint));
  try {
    return await hashStreaming(absPath);
  } finally {
    release();
  }
}

async function hashStreaming(absPath: string): Promise<FileHash> {
  const fh = await open(absPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const whole = createHash('sha256');
    const blocks: Promise<string>[] = [];
    // A file under one block gets a buffer its size, not a whole block.
    const expected = (await fh.stat()).size;
    const buf = Buffer.allocUnsafe(expected < BLOCK_BYTES ? expected + 1 : BLOCK_BYTES);
    let size = 0;
    for (;;) {
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await fh.read(buf, filled, buf.length - filled, size + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled === 0) break;
      if (buf.length < BLOCK_BYTES && filled === buf.length) {
        // It grew while we read it: the caller's re-stat sees that and hashes it again.
        throw new Error('file grew while hashing');
      }
      const chunk = buf.subarray(0, filled);
      // The block hash on the thread pool while this thread feeds the whole-file hash: two
      // cores for the two passes. WebCrypto copies its input before it queues the job (Node's
      // HashJob takes a copy for async jobs), so `buf` can be read into again at once; a copy
      // of our own as well cost a fresh MiB and its page faults per block (b: ~0.15 CPU-s).
      blocks.push(subtle.digest('SHA-256', chunk).then(toHex));
      whole.update(chunk);
      // At most HASH_AHEAD block copies waiting for the pool: memory stays bounded.
      if (blocks.length > HASH_AHEAD) await blocks[blocks.length - 1 - HASH_AHEAD];
      size += filled;
      if (filled < BLOCK_BYTES) break;
    }
    const hash = whole.digest('hex');
    const statAfter = await fh.stat();
    return { size, hash, blocks: size > BLOCK_BYTES ? await Promise.all(blocks) : [], statAfter };
  } finally {
    await fh.close();
  }
}
