import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InOrderHash } from './hasher.js';

const blocks = [1, 2, 3, 4, 5].map((n) => Buffer.alloc(1000, n));
const expected = createHash('sha256').update(Buffer.concat(blocks)).digest('hex');

describe('InOrderHash', () => {
  it('gives the whole-file hash from blocks landing out of order (repeats ignored)', () => {
    const h = new InOrderHash(1 << 20);
    for (const i of [2, 0, 4, 0, 1, 3]) h.add(i, blocks[i]!);
    expect(h.digest(blocks.length)).toBe(expected);
  });

  it('gives up rather than guess: a block missing, or too much held waiting', () => {
    const missing = new InOrderHash(1 << 20);
    for (const i of [0, 1, 3, 4]) missing.add(i, blocks[i]!);
    expect(missing.digest(blocks.length)).toBeNull();
    const bounded = new InOrderHash(1500);
    for (const i of [4, 3, 2, 1, 0]) bounded.add(i, blocks[i]!);
    expect(bounded.digest(blocks.length)).toBeNull();
  });
});
