import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../test/helpers/manual-clock.js';
import { BLOCK_BYTES } from './record.js';
import {
  RECENT_BLOCK_MAX_BYTES,
  RECENT_BLOCKS_MAX_BYTES,
  RECENT_BLOCKS_MAX_ENTRIES,
  RecentBlocks,
  RelayRing,
} from './recent-blocks.js';

let clock: ManualClock;
beforeEach(() => void (clock = new ManualClock()));

describe('recent blocks', () => {
  it('keeps copies, and at most its bytes and entries, the oldest leaving first', () => {
    const r = new RecentBlocks(clock);
    const frame = new Uint8Array(RECENT_BLOCK_MAX_BYTES + 1);
    r.add('big', frame);
    expect(r.get('big')).toBeUndefined();
    r.add('a', frame.subarray(0, 10));
    expect(r.get('a')!.buffer.byteLength).toBe(10); // not a view into the frame
    for (let i = 0; i < RECENT_BLOCKS_MAX_ENTRIES; i++) r.add(`k${i}`, new Uint8Array(1));
    expect(r.size).toBe(RECENT_BLOCKS_MAX_ENTRIES);
    expect(r.get('a')).toBeUndefined();
    const per = RECENT_BLOCK_MAX_BYTES;
    for (let i = 0; i < RECENT_BLOCKS_MAX_BYTES / per + 1; i++) r.add(`b${i}`, new Uint8Array(per));
    expect(r.get('b0')).toBeUndefined();
    expect(r.get(`b${RECENT_BLOCKS_MAX_BYTES / per}`)).toBeDefined();
  });
});

describe('recent blocks, idle', () => {
  it('lets its blocks go once none came for a while, not while they keep coming', () => {
    const r = new RecentBlocks(clock, 20);
    r.add('a', new Uint8Array(10));
    clock.advance(15);
    r.add('b', new Uint8Array(10));
    clock.advance(15); // 30 ms since the first block, 15 since the last
    expect(r.size).toBe(2);
    clock.advance(5);
    expect(r.size).toBe(0);
    expect(r.get('a')).toBeUndefined();
    expect(clock.pending).toBe(0);
  });
});

describe('relay ring', () => {
  const SLOT = RECENT_BLOCK_MAX_BYTES + 100; // the ring keeps what RecentBlocks does not
  const block = (n: number): Buffer => Buffer.alloc(SLOT, n);

  it('keeps the latest blocks in its slots, the oldest written over first', () => {
    const r = new RelayRing(clock, 2, SLOT);
    r.add('a', block(1));
    r.add('big', Buffer.alloc(SLOT + 1)); // larger than a slot: not kept
    expect(r.get('big')).toBeUndefined();
    r.add('b', block(2));
    r.add('c', block(3));
    expect(r.get('a')).toBeUndefined();
    expect(Buffer.from(r.get('b')!.data)).toEqual(block(2));
    expect(Buffer.from(r.get('c')!.data)).toEqual(block(3));
    expect(r.heldBytes).toBe(2 * SLOT);
  });

  it('never writes over a block on loan, however many turns the socket takes', async () => {
    const r = new RelayRing(clock, 1, SLOT);
    r.add('a', block(1));
    const lent = r.get('a')!;
    r.add('b', block(2)); // lands while the transport still has 'a' queued on the socket
    await new Promise((res) => setImmediate(res));
    r.add('c', block(3));
    expect(Buffer.from(lent.data)).toEqual(block(1));
    const c1 = r.get('c')!;
    const c2 = r.get('c')!; // asked for by two peers
    expect(Buffer.from(c1.data)).toEqual(block(3));
    c1.sent!();
    c1.sent!(); // given back twice: still one loan out
    lent.sent!();
    r.add('d', block(4));
    expect(Buffer.from(c2.data)).toEqual(block(3));
    c2.sent!();
    const slot = r.get('d')!;
    slot.sent!();
    r.add('e', block(5)); // no loans left: the slot is reused
    const e = r.get('e')!;
    expect(e.data.buffer).toBe(slot.data.buffer);
    expect(Buffer.from(e.data)).toEqual(block(5));
  });

  it('leaves small blocks to RecentBlocks, which a batch may hold across turns (copies)', async () => {
    const r = new RelayRing(clock, 1, BLOCK_BYTES);
    r.add('small', Buffer.alloc(RECENT_BLOCK_MAX_BYTES, 1));
    expect(r.get('small')).toBeUndefined();
    r.add('large', Buffer.alloc(RECENT_BLOCK_MAX_BYTES + 1, 3));
    const large = r.get('large')!;
    expect(large.data.buffer.byteLength).toBe(BLOCK_BYTES); // a view into its slot
    large.sent!();
    const recent = new RecentBlocks(clock);
    recent.add('small', Buffer.alloc(RECENT_BLOCK_MAX_BYTES, 1));
    const held = recent.get('small')!;
    await new Promise((res) => setImmediate(res)); // the batch's other blocks are still coming
    r.add('next', Buffer.alloc(RECENT_BLOCK_MAX_BYTES + 1, 2)); // the ring's one slot, reused
    expect(Buffer.from(held)).toEqual(Buffer.alloc(RECENT_BLOCK_MAX_BYTES, 1));
  });

  it('lets its buffers go once no block came for a while', () => {
    const r = new RelayRing(clock, 2, SLOT, 20);
    r.add('a', block(1));
    clock.advance(19);
    expect(r.heldBytes).toBe(SLOT);
    clock.advance(1);
    expect(r.heldBytes).toBe(0);
    expect(r.get('a')).toBeUndefined();
  });
});
