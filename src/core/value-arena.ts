/**
 * Where the state keeps the bytes of winning values. A value arrives as a view into something
 * much larger (a transport frame, a WAL read, an encoder's buffer) and a kept view pins all of
 * it: on an origin node 20,000 values of ~200 bytes held 24 MiB of buffers. Values are copied
 * into slabs that hold nothing but kept values. A superseded value leaves a hole until every
 * value in its slab is gone, so slabs are small; a value too big to share one gets its own.
 */
export const VALUE_SLAB_BYTES = 16 * 1024;

export class ValueArena {
  private slab = new Uint8Array(0);
  private used = 0;

  keep(v: Uint8Array): Uint8Array {
    if (v.length * 8 > VALUE_SLAB_BYTES) return new Uint8Array(v);
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
