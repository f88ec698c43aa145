import type { Entry, Meta, NodeId } from './types.js';

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

/**
 * A winning entry as the state keeps it. Its value is a range of a slab, viewed only when asked
 * for: a Uint8Array kept per value cost ~96 bytes, more than a typical value (a file record is
 * ~150), and the separate map of source tags ~36 more per key. At 100,000 keys that was ~11 MiB
 * per node. Its meta is kept as three fields and handed out as a fresh object: a kept `Meta`
 * object cost 64 bytes (its timestamp, above 2^31, is a heap number of its own) where the fields
 * cost 40. So `meta` has no identity: compare by value (`is`, `State.holds`). The range and
 * the meta live in private fields, so the entry reads like any other `Entry`.
 */
export class KeptEntry implements Entry {
  readonly #node: NodeId;
  readonly #seq: number;
  readonly #ts: number;
  #slab: Uint8Array | null;
  #start: number;
  readonly #length: number;
  /** Source id of the peer this winner came from (0: none or unknown); see `State.setSource`. */
  source = 0;

  constructor(
    readonly key: string,
    meta: Meta,
    value: Uint8Array | null,
    arena: ValueArena,
  ) {
    this.#node = meta.node;
    this.#seq = meta.seq;
    this.#ts = meta.ts;
    this.#length = value?.length ?? 0;
    this.#slab = value === null ? null : arena.keep(value);
    this.#start = value === null ? 0 : arena.keptAt;
  }

  /** A fresh copy of the entry's meta. */
  get meta(): Meta {
    return { node: this.#node, seq: this.#seq, ts: this.#ts };
  }

  /** Whether this entry is exactly the write `m` names. */
  is(m: Meta): boolean {
    return this.#node === m.node && this.#seq === m.seq && this.#ts === m.ts;
  }

  /** A fresh view of the kept bytes (null for a tombstone). */
  get value(): Uint8Array | null {
    return this.#slab === null
      ? null
      : this.#slab.subarray(this.#start, this.#start + this.#length);
  }

  get tombstone(): boolean {
    return this.#slab === null;
  }

  get valueBytes(): number {
    return this.#length;
  }

  /** Compaction: copy the bytes into the arena's current slab (a large value stays put). */
  moveInto(arena: ValueArena): void {
    if (this.#slab === null) return;
    const v = this.#slab.subarray(this.#start, this.#start + this.#length);
    if (!arena.shares(v)) {
      arena.handedOutBytes += this.#length; // a value with its own buffer has no holes
      return;
    }
    this.#slab = arena.keep(v);
    this.#start = arena.keptAt;
  }
}

export class ValueArena {
  private slab = new Uint8Array(0);
  private used = 0;
  /** Bytes handed out since the arena was (re)started: the most its slabs can hold. */
  handedOutBytes = 0;
  /** Where in the buffer `keep` returned the copy starts. */
  keptAt = 0;

  /** Start on fresh slabs; the old ones go once nothing refers to their values. */
  restart(): void {
    this.slab = new Uint8Array(0);
    this.used = 0;
    this.handedOutBytes = 0;
  }

  /** Whether a value of this size is copied into a shared slab (else it gets its own buffer). */
  shares(v: Uint8Array): boolean {
    return v.length * 8 <= VALUE_SLAB_BYTES;
  }

  /** Copy `v` in; returns the buffer holding the copy, which starts at `keptAt`. */
  keep(v: Uint8Array): Uint8Array {
    this.handedOutBytes += v.length;
    if (!this.shares(v)) {
      this.keptAt = 0;
      return new Uint8Array(v); // too big to share a slab
    }
    if (this.used + v.length > this.slab.length) {
      this.slab = new Uint8Array(VALUE_SLAB_BYTES);
      this.used = 0;
    }
    this.slab.set(v, this.used);
    this.keptAt = this.used;
    this.used += v.length;
    return this.slab;
  }
}
