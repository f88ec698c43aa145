import { describe, expect, it } from 'vitest';
import { Codec, FRESH_ENCODE_BUFFER_BYTES, MAX_SHARED_ENCODE_BUFFER_BYTES } from './index.js';

describe('codec', () => {
  it('does not leave msgpackr encoding small values into a buffer grown by a large one', () => {
    const c = new Codec({ useRecords: false, mapsAsObjects: true });
    const big = c.pack({ rows: new Uint8Array(3 * MAX_SHARED_ENCODE_BUFFER_BYTES) });
    expect(big.buffer.byteLength).toBeGreaterThan(MAX_SHARED_ENCODE_BUFFER_BYTES);
    const small = c.pack({ k: 'a small value' });
    // Without the reset the small value is a view into the ≥ 12 MiB buffer and pins it.
    expect(small.buffer.byteLength).toBeLessThanOrEqual(FRESH_ENCODE_BUFFER_BYTES);
    expect(c.unpack(small)).toEqual({ k: 'a small value' });
    expect((c.unpack(big) as { rows: Uint8Array }).rows.length).toBe(
      3 * MAX_SHARED_ENCODE_BUFFER_BYTES,
    );
  });

  it('decodes without adding properties to the bytes it is given', () => {
    const c = new Codec({ useRecords: false, mapsAsObjects: true });
    const bytes = new Uint8Array(c.pack({ n: 1.5, s: 'x' }));
    expect(c.unpack(bytes)).toEqual({ n: 1.5, s: 'x' });
    expect(Object.getOwnPropertyNames(bytes).filter((k) => !/^\d+$/.test(k))).toEqual([]);
  });

  it('packs a large value into one buffer of the size hinted', () => {
    const c = new Codec({ useRecords: false, mapsAsObjects: true });
    const rows = Array.from({ length: 20_000 }, (_, i) => [`path/${i}`, 'x'.repeat(64), i]);
    const plain = c.pack(rows);
    // Unhinted, msgpackr grows its buffer 4× at a time: far more than the encoding needs.
    expect(plain.buffer.byteLength).toBeGreaterThan(2 * plain.length);
    const hinted = c.pack(rows, plain.length);
    expect(hinted.buffer.byteLength).toBeLessThan(1.1 * plain.length + 8192);
    expect(Buffer.compare(hinted, plain)).toBe(0);
  });
});
