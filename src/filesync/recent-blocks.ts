import type { ServedBlock } from '../sync/index.js';
import type { Clock } from './clock.js';

/**
 * Blocks this node just downloaded, by hash, for serving them on. A relay is asked for a block
 * moments after it landed (often by a request it was holding for it); answering from here
 * saves reading it back: for a small file an open, a stat, a read, a close and a SHA-256; for
 * a large download (RelayRing) an O_DIRECT read that goes to the device, since its blocks
 * bypass the page cache. Content-addressed, so an entry can never be stale: the bytes were
 * checked against the hash when they arrived, and the asker checks them again. Bounded; oldest
 * out first.
 */
export const RECENT_BLOCKS_MAX_BYTES = 4 * 1024 * 1024;
export const RECENT_BLOCKS_MAX_ENTRIES = 4096;
/** Larger blocks are not kept (a large file's 1 MiB blocks would flush everything else). */
export const RECENT_BLOCK_MAX_BYTES = 64 * 1024;

/**
 * Both kinds let go of what they hold once nothing was added for this long: the next hop asks
 * within moments, and kept for good, up to 4 MiB of small blocks (and 8 MiB of ring) would be
 * part of a node's RSS long after the sync that brought them.
 */
export const RECENT_IDLE_DROP_MS = 10_000;

/**
 * Calls `fire` once `touch` has not been called for `ms`. One timer at a time, moved on when it
 * goes off early (a touch per block must not set a timer per block).
 */
class IdleTimer {
  private armed = false;
  private lastTouchMs = 0;

  constructor(
    private readonly clock: Clock,
    private readonly ms: number,
    private readonly fire: () => void,
  ) {}

  touch(): void {
    this.lastTouchMs = this.clock.now();
    if (!this.armed) this.arm(this.ms);
  }

  private arm(ms: number): void {
    this.armed = true;
    this.clock.setTimeout(() => {
      const idleMs = this.clock.now() - this.lastTouchMs;
      if (idleMs < this.ms) return this.arm(this.ms - idleMs);
      this.armed = false;
      this.fire();
    }, ms);
  }
}

export class RecentBlocks {
  private readonly byHash = new Map<string, Uint8Array>();
  private bytes = 0;
  private readonly idle: IdleTimer;

  constructor(clock: Clock, idleDropMs = RECENT_IDLE_DROP_MS) {
    this.idle = new IdleTimer(clock, idleDropMs, () => {
      this.byHash.clear();
      this.bytes = 0;
    });
  }

  /** Keep a verified block (copied: it may be a view into a much larger frame). */
  add(hash: string, data: Uint8Array): void {
    if (data.length > RECENT_BLOCK_MAX_BYTES || this.byHash.has(hash)) return;
    this.byHash.set(hash, new Uint8Array(data));
    this.bytes += data.length;
    while (this.bytes > RECENT_BLOCKS_MAX_BYTES || this.byHash.size > RECENT_BLOCKS_MAX_ENTRIES) {
      const [oldest, b] = this.byHash.entries().next().value as [string, Uint8Array];
      this.byHash.delete(oldest);
      this.bytes -= b.length;
    }
    this.idle.touch();
  }

  get(hash: string): Uint8Array | undefined {
    return this.byHash.get(hash);
  }

  get size(): number {
    return this.byHash.size;
  }
}

/**
 * A relay's latest large blocks, copied into a fixed ring of reused buffers. Kept as the
 * frames they arrived in, they outlived the young generation: promoted, every frame waited for
 * a full GC, and a relay's peak RSS during b rose from ~106 to ~142 MiB for 3 MiB kept. The
 * ring is dropped once no block was added for `idleDropMs`.
 *
 * A block handed out is lent until its borrower calls `sent` (the transport writes it to the
 * socket uncopied, and the socket may queue it): a slot on loan is never written over, a block
 * landing meanwhile takes a fresh buffer for that slot and the borrower keeps the old one. A
 * loan never given back costs that fresh buffer, never a wrong block. Small blocks (a large
 * file's last one) are RecentBlocks' (as copies): such a hash may also be a small file's,
 * asked for in a batch whose answer waits across turns for the batch's other blocks.
 */
export class RelayRing {
  private slots: { hash: string; buf: Buffer; length: number; loans: number }[] = [];
  private next = 0;
  private readonly idle: IdleTimer;

  constructor(
    clock: Clock,
    private readonly maxSlots: number,
    private readonly slotBytes: number,
    idleDropMs = RECENT_IDLE_DROP_MS,
  ) {
    this.idle = new IdleTimer(clock, idleDropMs, () => {
      this.slots = [];
      this.next = 0;
    });
  }

  /** Keep a verified block larger than RecentBlocks takes (others are ignored). */
  add(hash: string, data: Uint8Array): void {
    const size = data.length;
    if (this.maxSlots === 0 || size <= RECENT_BLOCK_MAX_BYTES || size > this.slotBytes) return;
    if (this.find(hash)) return;
    let s = this.slots[this.next];
    if (s === undefined || s.loans > 0) {
      s = { hash, buf: Buffer.allocUnsafeSlow(this.slotBytes), length: 0, loans: 0 };
      this.slots[this.next] = s;
    }
    s.buf.set(data);
    s.hash = hash;
    s.length = data.length;
    this.next = (this.next + 1) % this.maxSlots;
    this.idle.touch();
  }

  /** The block, lent until `sent` is called (see the class comment). */
  get(hash: string): ServedBlock | undefined {
    const s = this.find(hash);
    if (s === undefined) return undefined;
    s.loans++;
    let back = false;
    const sent = (): void => {
      if (back) return;
      back = true;
      s.loans--;
    };
    return { data: s.buf.subarray(0, s.length), sent };
  }

  /** Bytes of buffers the ring holds now. */
  get heldBytes(): number {
    return this.slots.length * this.slotBytes;
  }

  private find(hash: string): (typeof this.slots)[number] | undefined {
    return this.slots.find((s) => s.hash === hash && s.length > 0);
  }
}
