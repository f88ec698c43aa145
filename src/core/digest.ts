import { Hasher64, keyBucket } from './hash.js';
import type { Entry } from './types.js';

export const BUCKETS = 256;

/** Hash of one entry over (key, meta, value or tombstone). */
export function entryHash(e: Entry): [number, number] {
  const m = e.meta;
  const h = new Hasher64().string(e.key).word(m.node).uint(m.seq).uint(m.ts);
  if (e.value === null) h.word(0x7073_6d74 /* tombstone marker */).word(-1);
  else h.word(1).bytes(e.value);
  return h.finish();
}

/**
 * Order-independent digest of a set of entries: the XOR of entry hashes, kept per key bucket.
 * Adding and removing an entry are the same O(1) XOR, so the digest follows every Set/Clear
 * without a rescan, and two states holding the same entries always have the same digest.
 */
export class Digest {
  /** [hi0, lo0, hi1, lo1, …] for each bucket. */
  private readonly buckets = new Uint32Array(BUCKETS * 2);
  private hi = 0;
  private lo = 0;

  /** XOR an entry in or out (the operation is its own inverse). */
  toggle(e: Entry): void {
    const [h, l] = entryHash(e);
    const b = keyBucket(e.key) * 2;
    this.buckets[b] = (this.buckets[b]! ^ h) >>> 0;
    this.buckets[b + 1] = (this.buckets[b + 1]! ^ l) >>> 0;
    this.hi = (this.hi ^ h) >>> 0;
    this.lo = (this.lo ^ l) >>> 0;
  }

  /** The state digest as 16 hex digits. */
  get value(): string {
    return hex(this.hi) + hex(this.lo);
  }

  /** Each bucket's digest as 16 hex digits. */
  bucketDigests(): string[] {
    const out: string[] = [];
    for (let i = 0; i < BUCKETS; i++)
      out.push(hex(this.buckets[i * 2]!) + hex(this.buckets[i * 2 + 1]!));
    return out;
  }
}

function hex(x: number): string {
  return (x >>> 0).toString(16).padStart(8, '0');
}
