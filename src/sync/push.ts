import { entryWireBytes, type Entry, type NodeId, type WriteRef } from '../core/index.js';
import { logger } from '../log/index.js';
import { toWire } from './messages.js';
import type { PeerLink, Scheduler, TimerHandle } from './types.js';

const log = logger('sync');

/**
 * Entries of sent push frames kept per peer until the peer confirms them; past this the oldest
 * frames are let go (their entries then simply come back to the peer in a round).
 */
export const MAX_UNCONFIRMED_ENTRIES = 65_536;

/** Push frames sent to one peer and not yet confirmed, oldest first. */
interface Unconfirmed {
  frames: Map<number, WriteRef[]>;
  entries: number;
}

export interface PushOptions {
  windowMs: number;
  pageEntries: number;
  pageBytes: number;
  maxBufferedBytes: number;
}

/**
 * Push relay: entries that changed this node's state go to every connected peer except the one
 * they came from, gathered for a short window and coalesced per key (the window opens with the
 * first change after a quiet spell, which goes out at once). Pushes carry entries only
 * and never move acks; when a peer falls behind they are dropped and rounds catch it up. Each
 * frame is kept (keys and versions) until the peer confirms it, so that rounds can leave out
 * what it confirmed.
 */
export class PushRelay {
  private readonly queues = new Map<NodeId, Map<string, Entry>>();
  private timer: TimerHandle | null = null;
  private lastFlushMs = -Infinity;
  /** Frame ids: never reused, so a confirmation names one frame whatever link it comes on. */
  private nextId = 1;
  private readonly unconfirmed = new Map<NodeId, Unconfirmed>();
  readonly counters = { pushed: 0, dropped: 0, messages: 0 };

  constructor(
    private readonly links: ReadonlyMap<NodeId, PeerLink>,
    private readonly sched: Scheduler,
    private readonly opts: PushOptions,
  ) {}

  /** Queue `entry` for every linked peer except `source`. */
  offer(entry: Entry, source: NodeId | undefined): void {
    for (const peer of this.links.keys()) {
      if (peer === source) continue;
      let q = this.queues.get(peer);
      if (q === undefined) this.queues.set(peer, (q = new Map()));
      q.set(entry.key, entry);
      // Bound what waits per peer: past a few pages, rounds are the cheaper way to catch up.
      if (q.size > this.opts.pageEntries * 4) {
        this.counters.dropped += q.size;
        this.queues.delete(peer);
        log.debug('push queue overflow; leaving it to rounds', { peer });
      }
    }
    // Leading edge: after a quiet spell the first change goes out at once (latency); changes
    // that follow within the window are gathered into one message per peer (throughput).
    const waitMs = Math.max(0, this.lastFlushMs + this.opts.windowMs - this.sched.now());
    this.timer ??= this.sched.setTimeout(() => this.flush(), waitMs);
  }

  forget(peer: NodeId): void {
    this.queues.delete(peer);
    this.unconfirmed.delete(peer);
  }

  /** The writes of frame `id` that `peer` now confirmed, once; undefined if not kept. */
  confirmed(peer: NodeId, id: number): WriteRef[] | undefined {
    const u = this.unconfirmed.get(peer);
    const writes = u?.frames.get(id);
    if (u === undefined || writes === undefined) return undefined;
    u.frames.delete(id);
    u.entries -= writes.length;
    return writes;
  }

  private keep(peer: NodeId, id: number, page: readonly Entry[]): void {
    let u = this.unconfirmed.get(peer);
    if (u === undefined) this.unconfirmed.set(peer, (u = { frames: new Map(), entries: 0 }));
    // Key and meta only: a value kept here would pin its whole frame's bytes.
    u.frames.set(
      id,
      page.map((e) => ({ key: e.key, meta: e.meta })),
    );
    u.entries += page.length;
    for (const [old, writes] of u.frames) {
      if (u.entries <= MAX_UNCONFIRMED_ENTRIES) break;
      u.frames.delete(old);
      u.entries -= writes.length;
    }
  }

  flush(): void {
    this.timer = null;
    this.lastFlushMs = this.sched.now();
    for (const [peer, q] of this.queues) {
      this.queues.delete(peer);
      const link = this.links.get(peer);
      if (link === undefined || link.bufferedBytes > this.opts.maxBufferedBytes) {
        this.counters.dropped += q.size;
        continue;
      }
      let page: Entry[] = [];
      let bytes = 0;
      const send = (): void => {
        if (page.length === 0) return;
        const id = this.nextId++;
        if (link.send({ t: 'push', id, entries: page.map(toWire) })) {
          this.keep(peer, id, page);
          this.counters.pushed += page.length;
          this.counters.messages++;
        } else this.counters.dropped += page.length;
        page = [];
        bytes = 0;
      };
      for (const e of q.values()) {
        const cost = entryWireBytes(e);
        if (page.length >= this.opts.pageEntries || bytes + cost > this.opts.pageBytes) send();
        page.push(e);
        bytes += cost;
      }
      send();
    }
  }

  stop(): void {
    if (this.timer !== null) this.sched.clearTimeout(this.timer);
    this.timer = null;
    this.queues.clear();
    this.unconfirmed.clear();
  }
}
