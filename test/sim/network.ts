import { Packr } from 'msgpackr';
import type { NodeId } from '../../src/core/index.js';
import {
  parseMessage,
  type PeerLink,
  type SyncMessage,
  type Transport,
  type TransportHandler,
} from '../../src/sync/index.js';
import type { EventQueue } from './events.js';
import type { Prng } from './prng.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

interface SimLink {
  readonly id: number;
  readonly a: SimTransport;
  readonly b: SimTransport;
  up: boolean;
}

/** Faults the network injects; the world changes them between phases. */
export interface Faults {
  dropP: number;
  dupP: number;
  maxDelayMs: number;
}

/**
 * A fake network: one link per pair of nodes, messages encoded and validated as on the wire,
 * delivered after random delays (so reordered), sometimes dropped or duplicated, and cut by
 * partitions. A link's messages die with it.
 */
export class SimNetwork {
  readonly endpoints = new Map<string, SimTransport>();
  private readonly links = new Map<string, SimLink>();
  private readonly cut = new Set<string>();
  private linkIds = 0;
  faults: Faults = { dropP: 0, dupP: 0, maxDelayMs: 5 };

  constructor(
    readonly q: EventQueue,
    readonly rng: Prng,
  ) {}

  static pair(a: NodeId, b: NodeId): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`;
  }

  isCut(a: NodeId, b: NodeId): boolean {
    return this.cut.has(SimNetwork.pair(a, b));
  }

  /** Cut every pair that crosses between `group` and the rest. */
  partition(group: Set<NodeId>, all: NodeId[]): void {
    for (const a of group) {
      for (const b of all) {
        if (group.has(b)) continue;
        const k = SimNetwork.pair(a, b);
        this.cut.add(k);
        const l = this.links.get(k);
        if (l) this.closeLink(l, 'partitioned');
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  linkBetween(a: NodeId, b: NodeId): SimLink | undefined {
    return this.links.get(SimNetwork.pair(a, b));
  }

  connect(from: SimTransport, to: SimTransport): void {
    const k = SimNetwork.pair(from.id, to.id);
    if (this.links.has(k) || this.cut.has(k)) return;
    const link: SimLink = { id: ++this.linkIds, a: from, b: to, up: true };
    this.links.set(k, link);
    from.up(link, to);
    to.up(link, from);
  }

  closeLink(link: SimLink, reason: string): void {
    if (!link.up) return;
    link.up = false;
    this.links.delete(SimNetwork.pair(link.a.id, link.b.id));
    link.a.down(link.b.id, reason);
    link.b.down(link.a.id, reason);
  }

  send(link: SimLink, from: SimTransport, msg: SyncMessage): boolean {
    if (!link.up) return false;
    const to = link.a === from ? link.b : link.a;
    // `sent` is local (never on the wire), called once the bytes are taken.
    const bytes = packr.pack(
      msg.t === 'block-res' ? { t: msg.t, rid: msg.rid, data: msg.data } : msg,
    );
    if (msg.t === 'block-res') msg.sent?.();
    const f = this.faults;
    if (this.rng.chance(f.dropP)) return true; // lost on the way
    const copies = this.rng.chance(f.dupP) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.q.schedule(this.rng.int(1, f.maxDelayMs), () => {
        if (!link.up) return;
        const decoded = parseMessage(packr.unpack(bytes), 100_000);
        to.deliver(from.id, decoded);
      });
    }
    return true;
  }
}

/** One node's transport on the fake network. Dials are retried until they succeed. */
export class SimTransport implements Transport {
  private handler: TransportHandler | null = null;
  private readonly desired = new Set<string>();
  private readonly retrying = new Set<string>();
  private readonly peerAddr = new Map<NodeId, string>();
  private closed = false;

  constructor(
    private readonly net: SimNetwork,
    readonly id: NodeId,
    readonly incarnation: string,
    readonly address: string,
  ) {}

  start(handler: TransportHandler): void {
    this.handler = handler;
    this.net.endpoints.set(this.address, this);
  }

  dial(address: string): void {
    if (address === this.address || this.closed) return;
    this.desired.add(address);
    this.tryDial(address, this.net.rng.int(1, 20));
  }

  private tryDial(address: string, delayMs: number): void {
    if (this.retrying.has(address)) return;
    this.retrying.add(address);
    this.net.q.schedule(delayMs, () => {
      this.retrying.delete(address);
      if (this.closed || !this.desired.has(address)) return;
      const target = this.net.endpoints.get(address);
      if (target === undefined || target.closed || this.net.isCut(this.id, target.id)) {
        this.tryDial(address, this.net.rng.int(200, 800));
        return;
      }
      this.net.connect(this, target);
    });
  }

  hangUp(peer: NodeId): void {
    const addr = this.peerAddr.get(peer);
    if (addr !== undefined) this.desired.delete(addr);
    const l = this.net.linkBetween(this.id, peer);
    if (l) this.net.closeLink(l, 'hung up');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.net.endpoints.delete(this.address);
    for (const t of [...this.net.endpoints.values(), this]) {
      const l = this.net.linkBetween(this.id, t.id);
      if (l) this.net.closeLink(l, 'peer closed');
    }
  }

  up(link: SimLink, other: SimTransport): void {
    this.peerAddr.set(other.id, other.address);
    const peerLink: PeerLink = {
      peer: other.id,
      incarnation: other.incarnation,
      advertise: other.address,
      bufferedBytes: 0,
      send: (msg) => this.net.send(link, this, msg),
    };
    this.handler?.linkUp(peerLink);
  }

  down(peer: NodeId, reason: string): void {
    this.handler?.linkDown(peer, reason);
    const addr = this.peerAddr.get(peer);
    if (!this.closed && addr !== undefined && this.desired.has(addr))
      this.tryDial(addr, this.net.rng.int(100, 600));
  }

  deliver(from: NodeId, msg: SyncMessage): void {
    if (!this.closed) this.handler?.message(from, msg);
  }
}
