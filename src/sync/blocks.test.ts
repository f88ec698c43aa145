import { describe, expect, it } from 'vitest';
import { serveBatch } from './blocks.js';
import { MAX_BATCH_BYTES, MAX_BATCH_REFS, type BlockRef } from './messages.js';
import { parseMessage, ProtocolError } from './parse.js';

const ref = (i: number): BlockRef => ({
  key: `__file/f${i}`,
  node: 1,
  seq: i + 1,
  index: 0,
  hash: 'h',
});

describe('block batches', () => {
  it('an answer keeps order, answers null where it cannot serve, and stays within its byte budget', async () => {
    const big = new Uint8Array(MAX_BATCH_BYTES / 2);
    const data = await serveBatch(
      (_peer, r) =>
        r.seq === 2
          ? Promise.resolve(null)
          : r.seq === 3
            ? Promise.reject(new Error('x'))
            : Promise.resolve({ data: big }),
      7,
      [0, 1, 2, 3, 4].map(ref),
    );
    // f0 and f3 fit (half the budget each); f1 cannot be served, f2 failed, f4 is over budget.
    expect(data.map((d) => (d === null ? null : d.length))).toEqual([
      big.length,
      null,
      null,
      big.length,
      null,
    ]);
  });

  it('copies a lent block into the answer and gives the lent one back before answering', async () => {
    const slot = Buffer.alloc(100, 1);
    let given = 0;
    const [d] = await serveBatch(
      () => Promise.resolve({ data: slot, sent: () => void given++ }),
      7,
      [ref(0)],
    );
    expect(given).toBe(1);
    slot.fill(2); // the lender reuses its buffer
    expect(Buffer.from(d!)).toEqual(Buffer.alloc(100, 1));
  });

  it('refuses malformed or oversized batches on the wire', () => {
    const wire = (n: number): unknown[] =>
      Array.from({ length: n }, (_, i) => [`k${i}`, 1, 1, 0, 'h']);
    expect(parseMessage({ t: 'blocks', rid: 1, refs: wire(3) }, 100).t).toBe('blocks');
    expect(() =>
      parseMessage({ t: 'blocks', rid: 1, refs: wire(MAX_BATCH_REFS + 1) }, 100),
    ).toThrow(ProtocolError);
    expect(() => parseMessage({ t: 'blocks', rid: 1, refs: [['k', 1, 1, 0]] }, 100)).toThrow(
      ProtocolError,
    );
    expect(() => parseMessage({ t: 'blocks', rid: 1, refs: [['k', 1, -1, 0, 'h']] }, 100)).toThrow(
      ProtocolError,
    );
    const block = new Uint8Array(1024 * 1024);
    expect(() =>
      parseMessage({ t: 'blocks-res', rid: 1, data: Array.from({ length: 6 }, () => block) }, 100),
    ).toThrow(ProtocolError);
    expect(parseMessage({ t: 'blocks-res', rid: 1, data: [block, null] }, 100).t).toBe(
      'blocks-res',
    );
  });
});
