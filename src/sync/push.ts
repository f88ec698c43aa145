import { entryWireBytes, type Entry, type NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import { toWire } from './messages.js';
import type { PeerLink, Scheduler, TimerHandle } from './types.js';

const log = logger('sync');

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
 * and never move acks; when a peer falls behind they are dropped and rounds catch it up.
 */
export class PushRelay {
  private readonly queues = new Map<NodeId, Map<string, Entry>>();
  private timer: TimerHandle | null = null;
  private lastFlushMs = -Infinity;
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
        if (link.send({ t: 'push', entries: page.map(toWire) })) {
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
  }
}
