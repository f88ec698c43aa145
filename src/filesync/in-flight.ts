import type { NodeId } from '../core/index.js';
import type { Clock } from './clock.js';

/**
 * Block requests this node is making, per key and peer. A node never holds a request from a
 * peer it is itself asking for the same key: two relays would otherwise wait on each other.
 */
export class AskedPeers {
  private readonly asked = new Map<string, Map<NodeId, number>>();

  /** Run a request to `peer` for `keys`, noting them as outstanding meanwhile. */
  async asking<T>(keys: string[], peer: NodeId, fn: () => Promise<T>): Promise<T> {
    for (const key of keys) {
      let peers = this.asked.get(key);
      if (peers === undefined) this.asked.set(key, (peers = new Map()));
      peers.set(peer, (peers.get(peer) ?? 0) + 1);
    }
    try {
      return await fn();
    } finally {
      for (const key of keys) {
        const peers = this.asked.get(key)!;
        const n = peers.get(peer)! - 1;
        if (n > 0) peers.set(peer, n);
        else peers.delete(peer);
        if (peers.size === 0) this.asked.delete(key);
      }
    }
  }

  has(key: string, peer: NodeId): boolean {
    return this.asked.get(key)?.has(peer) === true;
  }
}

/** Held block requests waiting for progress on their key (a block written, an apply ended). */
export class KeyProgress {
  private readonly wakers = new Map<string, Set<() => void>>();
  private held = 0;

  constructor(private readonly clock: Clock) {}

  /** Requests waiting now. */
  get waiting(): number {
    return this.held;
  }

  /** Resolves on the next progress of `key`, or after `ms`. */
  next(key: string, ms: number): Promise<void> {
    this.held++;
    return new Promise<void>((resolve) => {
      let set = this.wakers.get(key);
      if (set === undefined) this.wakers.set(key, (set = new Set()));
      const done = (): void => {
        this.clock.clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.wakers.get(key) === set) this.wakers.delete(key);
        this.held--;
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      set.add(done);
    });
  }

  progressed(key: string): void {
    const set = this.wakers.get(key);
    if (set !== undefined) for (const wake of [...set]) wake();
  }

  /** Wake everyone (shutting down). */
  wakeAll(): void {
    for (const set of [...this.wakers.values()]) for (const wake of [...set]) wake();
  }
}
