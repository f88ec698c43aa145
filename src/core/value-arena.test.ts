import { describe, expect, it } from 'vitest';
import { entryWireBytes } from './limits.js';
import { State } from './state.js';
import { COMPACT_FACTOR, COMPACT_MIN_BYTES, VALUE_SLAB_BYTES } from './value-arena.js';

describe('values the state keeps', () => {
  it('are copies that do not pin the buffer they arrived in', () => {
    const frame = new Uint8Array(1024 * 1024).fill(7);
    const s = new State(1);
    for (let i = 0; i < 100; i++) {
      const value = frame.subarray(i * 200, i * 200 + 150);
      s.apply({
        type: 'set',
        entry: { key: `k${i}`, value, meta: { node: 2, seq: i + 1, ts: 5 } },
      });
    }
    frame.fill(9); // the sender reuses its frame: what the state holds must not change
    for (let i = 0; i < 100; i++) {
      const v = s.get(`k${i}`)!.value!;
      expect(v.buffer.byteLength).toBeLessThanOrEqual(VALUE_SLAB_BYTES);
      expect(v.length).toBe(150);
      expect(v.every((b) => b === 7)).toBe(true);
      // A kept entry costs what the entry it came from costs in a message.
      const plain = { key: `k${i}`, value: v, meta: { node: 2, seq: i + 1, ts: 5 } };
      expect(entryWireBytes(s.get(`k${i}`)!)).toBe(entryWireBytes(plain));
    }
    const large = new Uint8Array(VALUE_SLAB_BYTES);
    s.apply({
      type: 'set',
      entry: { key: 'big', value: large, meta: { node: 2, seq: 500, ts: 5 } },
    });
    expect(s.get('big')!.value!.buffer).not.toBe(large.buffer);
    expect(s.get('big')!.value!.length).toBe(VALUE_SLAB_BYTES);
  });

  it('are compacted as rewrites of the same keys leave holes in their slabs', () => {
    const s = new State(1);
    const keys = 20_000;
    let seq = 0;
    let seed = 7;
    const rand = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const slabsHeld = (): number => {
      const held = new Set<ArrayBufferLike>();
      for (const e of s.entries()) if (e.value) held.add(e.value.buffer);
      return held.size;
    };
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < keys; i++) {
        const k = Math.floor(rand() * keys); // random rewrites: survivors scatter over slabs
        const value = new Uint8Array(200).fill(k % 251);
        s.apply({
          type: 'set',
          entry: { key: `k${k}`, value, meta: { node: 2, seq: ++seq, ts: seq } },
        });
      }
    }
    const liveBytes = [...s.entries()].reduce((n, e) => n + (e.value?.length ?? 0), 0);
    // Without compaction the survivors keep 1,240 slabs here (~5× the live bytes).
    const bound = (COMPACT_FACTOR * liveBytes + COMPACT_MIN_BYTES) / VALUE_SLAB_BYTES + 1;
    expect(slabsHeld()).toBeLessThanOrEqual(bound);
    for (const e of s.entries())
      expect(e.value!.every((b) => b === Number(e.key.slice(1)) % 251)).toBe(true);
  });
});
