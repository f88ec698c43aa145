/**
 * Where the state keeps the bytes of winning values. A value arrives as a view into something
 * much larger (a transport frame, a WAL read, an encoder's buffer) and a kept view pins all of
 * it: on an origin node 20,000 values of ~200 bytes held 24 MiB of buffers. Values are copied
 * into slabs that hold nothing but kept values. A superseded value leaves a hole until every
 * value in its slab is gone, so slabs are small; a value too big to share one gets its own.
 * Holes add up under rewrites of the same keys, so the state copies its live values into fresh
 * slabs once it has handed out more than COMPACT_FACTOR times their size (see State).
 */
export const VALUE_SLAB_BYTES = 16 * 1024;

/** Compact once bytes handed out since the last compaction exceed this many times the live. */
export const COMPACT_FACTOR = 2;
/** …and this many bytes besides (small states never bother). */
export const COMPACT_MIN_BYTES = 64 * VALUE_SLAB_BYTES;

export class ValueArena {
  private slab = new Uint8Array(0);
  private used = 0;
  /** Bytes handed out since the arena was (re)started: the most its slabs can hold. */
  handedOutBytes = 0;

  /** Start on fresh slabs; the old ones go once nothing refers to their values. */
  restart(): void {
    this.slab = new Uint8Array(0);
    this.used = 0;
    this.handedOutBytes = 0;
  }

  /** Keep a value this arena already holds (compaction): one with its own buffer stays put. */
  keepAgain(v: Uint8Array): Uint8Array {
    if (v.length * 8 <= VALUE_SLAB_BYTES) return this.keep(v);
    this.handedOutBytes += v.length;
    return v;
  }

  keep(v: Uint8Array): Uint8Array {
    this.handedOutBytes += v.length;
    if (v.length * 8 > VALUE_SLAB_BYTES) return new Uint8Array(v); // too big to share a slab
    if (this.used + v.length > this.slab.length) {
      this.slab = new Uint8Array(VALUE_SLAB_BYTES);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + v.length);
    out.set(v);
    this.used += v.length;
    return out;
  }
}
