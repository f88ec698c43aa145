import { describe, expect, it } from 'vitest';
import { BlockPlane, BlockPlaneError, type BlockRoutes } from './block-plane.js';
import { DEFAULT_BLOCK_BUDGET } from './budget.js';
import type { BlockRef, SyncMessage } from './messages.js';

const ref: BlockRef = { key: 'k', node: 1, seq: 1, index: 0, hash: 'h' };

/** Routes that record what is sent, and answer requests with `answer`. */
function routes(
  answer: (m: SyncMessage) => unknown = () => null,
): BlockRoutes & { sent: SyncMessage[] } {
  const sent: SyncMessage[] = [];
  return {
    sent,
    send: (_peer, m) => (sent.push(m), true),
    ask: (_peer, build) => Promise.resolve(answer(build(1)) as never),
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('BlockPlane', () => {
  it('answers null until an embedder serves blocks, then what it serves', async () => {
    const r = routes();
    const plane = new BlockPlane(r, DEFAULT_BLOCK_BUDGET, () => 0);
    plane.onBlock(7, { t: 'block', rid: 1, ...ref });
    plane.serve(() => Promise.resolve({ data: new Uint8Array([9]) }));
    plane.onBlock(7, { t: 'block', rid: 2, ...ref });
    plane.onBlocks(7, { t: 'blocks', rid: 3, refs: [['k', 1, 1, 0, 'h']] });
    await settle();
    expect(r.sent).toEqual([
      { t: 'block-res', rid: 1, data: null, sent: undefined },
      { t: 'block-res', rid: 2, data: new Uint8Array([9]), sent: undefined },
      { t: 'blocks-res', rid: 3, data: [new Uint8Array([9])] },
    ]);
  });

  it('answers null once a peer has drawn its budget, and a failing server with null', async () => {
    const r = routes();
    const budget = { ...DEFAULT_BLOCK_BUDGET, burstBytes: 100, refillBytesPerSec: 0 };
    const plane = new BlockPlane(r, budget, () => 0);
    plane.serve((_p, q) =>
      q.index === 1
        ? Promise.reject(new Error('gone'))
        : Promise.resolve({ data: new Uint8Array(100) }),
    );
    plane.onBlock(7, { t: 'block', rid: 1, ...ref }); // draws the whole budget
    await settle();
    plane.onBlock(7, { t: 'block', rid: 2, ...ref });
    plane.onBlock(8, { t: 'block', rid: 3, ...ref, index: 1 }); // another peer: its own budget
    await settle();
    const data = r.sent.map((m) => (m.t === 'block-res' ? (m.data?.length ?? null) : 'other'));
    expect(data).toEqual([100, null, null]);
  });

  it('refuses a batch answer of the wrong length', async () => {
    const plane = new BlockPlane(
      routes(() => ({ t: 'blocks-res', rid: 1, data: [null] })),
      DEFAULT_BLOCK_BUDGET,
      () => 0,
    );
    await expect(plane.fetchBatch(7, [ref, ref])).rejects.toThrow(BlockPlaneError);
    expect(await plane.fetchBatch(7, [ref])).toEqual([null]);
  });
});
