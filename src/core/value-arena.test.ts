import { describe, expect, it } from 'vitest';
import { State } from './state.js';
import { VALUE_SLAB_BYTES } from './value-arena.js';

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
    }
    const large = new Uint8Array(VALUE_SLAB_BYTES);
    s.apply({
      type: 'set',
      entry: { key: 'big', value: large, meta: { node: 2, seq: 500, ts: 5 } },
    });
    expect(s.get('big')!.value!.buffer).not.toBe(large.buffer);
    expect(s.get('big')!.value!.length).toBe(VALUE_SLAB_BYTES);
  });
});
