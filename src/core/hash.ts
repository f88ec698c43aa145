/**
 * A 64-bit (two 32-bit lanes) non-cryptographic hash for state digests. Digests detect
 * divergence between cooperating peers; they are not a defence against a malicious one, so a
 * fast murmur3-style mix in plain JS (deterministic on every platform) beats a crypto hash here.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixA(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function mixB(h: number, k: number): number {
  k = Math.imul(k ^ 0x5bd1e995, C2);
  k = (k << 17) | (k >>> 15);
  k = Math.imul(k, C1);
  h ^= k;
  h = (h << 11) | (h >>> 21);
  return (Math.imul(h, 9) + 0x7f4a7c15) | 0;
}

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Incremental two-lane hasher. Feed words, strings and bytes; `finish` yields [hi, lo]. */
export class Hasher64 {
  private a = 0x9747b28c | 0;
  private b = 0x2f1a3c5d | 0;
  private n = 0;

  word(k: number): this {
    this.a = mixA(this.a, k | 0);
    this.b = mixB(this.b, k | 0);
    this.n += 4;
    return this;
  }

  /** A non-negative safe integer (ts, seq) as two words. */
  uint(x: number): this {
    return this.word(x % 0x1_0000_0000).word(Math.floor(x / 0x1_0000_0000));
  }

  /** A string by its UTF-16 code units: the same string hashes the same everywhere. */
  string(s: string): this {
    const len = s.length;
    this.word(len);
    let i = 0;
    for (; i + 1 < len; i += 2) this.word(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
    if (i < len) this.word(s.charCodeAt(i));
    return this;
  }

  bytes(buf: Uint8Array): this {
    const len = buf.length;
    this.word(len);
    let i = 0;
    for (; i + 3 < len; i += 4) {
      this.word(buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    }
    let tail = 0;
    for (let s = 0; i < len; i++, s += 8) tail |= buf[i]! << s;
    return this.word(tail);
  }

  finish(): [hi: number, lo: number] {
    const a = fmix32(this.a ^ this.n);
    const b = fmix32(this.b ^ this.n ^ a);
    return [a, b];
  }
}

/** Bucket (0..255) of a key, by a hash of the key alone so it never moves between versions. */
export function keyBucket(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return fmix32(h) & 0xff;
}
