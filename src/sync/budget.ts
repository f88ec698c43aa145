import type { NodeId } from '../core/index.js';

/** Every limit of what one peer's requests may make this node send. Units in the names. */
export interface ServeBudgetOptions {
  /** Bytes a peer may draw at once (a bootstrap's first pages fit). */
  burstBytes: number;
  /** Bytes a peer's credit grows by each second on its own. */
  refillBytesPerSec: number;
  /** Credit for each byte a peer sends us: answering in kind is never throttled. */
  perRequestByteFactor: number;
  /** The least a request costs, however small its answer (a flood of empty rounds). */
  minRequestBytes: number;
}

export const DEFAULT_SERVE_BUDGET: Readonly<ServeBudgetOptions> = Object.freeze({
  burstBytes: 16 * 1024 * 1024,
  refillBytesPerSec: 2 * 1024 * 1024,
  perRequestByteFactor: 10,
  minRequestBytes: 1024,
});

/**
 * Block bytes one peer's requests may draw: far above what a transfer needs (a 256 MiB file
 * crosses loopback at about 100 MiB/s), so only a peer asking for the same content again and
 * again, faster than any download, is slowed (its requests are answered "not here").
 */
export const DEFAULT_BLOCK_BUDGET: Readonly<ServeBudgetOptions> = Object.freeze({
  burstBytes: 512 * 1024 * 1024,
  refillBytesPerSec: 256 * 1024 * 1024,
  perRequestByteFactor: 10,
  minRequestBytes: 0,
});

/**
 * Per-peer token buckets over the bytes of what we answer to rounds, pages and repair requests:
 * a peer asking again and again for everything (a reset round, every bucket) gets at most
 * about ten times what it sends plus a steady allowance, never hundreds of MiB for a few KiB.
 * A request refused for want of credit is answered with an error; the asker tries later.
 */
export class ServeBudgets {
  private readonly buckets = new Map<NodeId, { tokens: number; atMs: number }>();

  constructor(
    private readonly opts: Readonly<ServeBudgetOptions>,
    private readonly now: () => number,
  ) {}

  /** May `peer`'s request of `requestBytes` be answered now? Credits the request if so. */
  allow(peer: NodeId, requestBytes: number): boolean {
    const b = this.refill(peer);
    if (b.tokens <= 0) return false;
    b.tokens -= this.opts.minRequestBytes;
    b.tokens = Math.min(
      b.tokens + requestBytes * this.opts.perRequestByteFactor,
      this.opts.burstBytes,
    );
    return true;
  }

  /** `bytes` were sent to `peer` in answer to its request. */
  charge(peer: NodeId, bytes: number): void {
    this.refill(peer).tokens -= bytes;
  }

  forget(peer: NodeId): void {
    this.buckets.delete(peer);
  }

  private refill(peer: NodeId): { tokens: number; atMs: number } {
    const now = this.now();
    let b = this.buckets.get(peer);
    if (b === undefined) {
      b = { tokens: this.opts.burstBytes, atMs: now };
      this.buckets.set(peer, b);
    }
    const grown = ((now - b.atMs) / 1000) * this.opts.refillBytesPerSec;
    b.tokens = Math.min(this.opts.burstBytes, b.tokens + grown);
    b.atMs = now;
    return b;
  }
}
