import { type Entry, type NodeId, type WriteRef } from '../core/index.js';
import { logger } from '../log/index.js';
import { fromWire, type BlockRef, type SyncMessage } from './messages.js';
import { BlockPlane } from './block-plane.js';
import type { BlockServer } from './blocks.js';
import { Membership } from './membership.js';
import { forgetMember, peerKey } from './peer-record.js';
import { PushRelay } from './push.js';
import { expectAnswer, Requests } from './requests.js';
import { Responder, type ResponderHost } from './respond.js';
import { Rounds, type PeerInfo, type RoundsHost } from './rounds.js';
import {
  DEFAULT_SYNC_OPTIONS,
  type ChangeLike,
  type PeerLink,
  type Scheduler,
  type SyncNode,
  type SyncOptions,
  type TimerHandle,
  type Transport,
} from './types.js';

const log = logger('sync');

/** A confirmation of writes our own commit has not finished is tried again this often. */
const CONFIRM_RETRY_MS = 20;
const CONFIRM_RETRIES = 5;

/**
 * The sync protocol driver: it keeps links and peers and routes messages to its parts (rounds,
 * the only authority over acks; the responder; push relay; membership and discovery through
 * `__peer/<id>`; the block plane), confirms what peers hold, and runs tombstone GC. It sees
 * peers only through `Transport` and time only through `Scheduler`, so the simulator runs it
 * unchanged.
 */
export class SyncDriver {
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly peers = new Map<NodeId, PeerInfo>();
  private readonly responder: Responder;
  private readonly requests: Requests;
  private readonly rounds: Rounds;
  private readonly opts: SyncOptions;
  private readonly push: PushRelay;
  private readonly members: Membership;
  private gcTimer: TimerHandle | null = null;
  private stopped = false;
  readonly counters = {
    roundsOk: 0,
    roundsFailed: 0,
    entriesSent: 0,
    entriesReceived: 0,
    /** Entries peers confirmed holding (pushes, responses, requests), and how many were marked. */
    confirmed: 0,
    heldMarked: 0,
    rejected: 0,
    divergences: 0,
    repairs: 0,
    resets: 0,
    /** Requests refused for want of the peer's serve budget. */
    throttled: 0,
  };
  /** Content blocks (filesync's): served and fetched beside the sync protocol. */
  readonly blocks: BlockPlane;
  /** Requests the driver routes to another plane instead of answering them itself. */
  private readonly routes: Partial<
    Record<SyncMessage['t'], (peer: NodeId, m: SyncMessage) => void>
  >;

  constructor(
    private readonly node: SyncNode,
    private readonly transport: Transport,
    private readonly sched: Scheduler,
    opts: Partial<SyncOptions> = {},
    fresh = false,
  ) {
    this.opts = { ...DEFAULT_SYNC_OPTIONS, ...opts };
    this.requests = new Requests(
      {
        sched,
        send: (peer, m) => this.links.get(peer)?.send(m) ?? false,
        linked: (peer) => this.links.has(peer),
      },
      this.opts.requestTimeoutMs,
    );
    this.rounds = new Rounds(this.roundsHost(), this.opts, fresh);
    this.responder = new Responder(this.responderHost(), this.opts);
    this.blocks = new BlockPlane(
      {
        send: (peer, m) => this.links.get(peer)?.send(m) ?? false,
        ask: async (peer, build, t) => expectAnswer(await this.requests.request(peer, build), t),
      },
      this.opts.blockBudget,
      () => sched.now(),
    );
    this.routes = {
      block: (peer, m) => {
        if (m.t === 'block') this.blocks.onBlock(peer, m);
      },
      blocks: (peer, m) => {
        if (m.t === 'blocks') this.blocks.onBlocks(peer, m);
      },
    };
    this.members = new Membership(
      { node, transport, linked: (peer) => this.links.has(peer) },
      this.opts,
    );
    this.push = new PushRelay(this.links, sched, {
      windowMs: this.opts.pushWindowMs,
      pageEntries: this.opts.pageEntries,
      pageBytes: this.opts.pageBytes,
      maxBufferedBytes: this.opts.maxPushBufferedBytes,
    });
  }

  /** What the rounds (this node's side of the protocol) see of the driver. */
  private roundsHost(): RoundsHost {
    return {
      node: this.node,
      sched: this.sched,
      requests: this.requests,
      counters: this.counters,
      info: (peer) => this.info(peer),
      linked: (peer) => this.links.has(peer),
      send: (peer, m) => this.links.get(peer)?.send(m) ?? false,
      stopped: () => this.stopped,
      merge: (peer, entries) => this.mergeFrom(peer, entries),
      confirmed: (peer, writes) => this.confirmed(peer, writes),
      paging: (peer) => this.responder.views.paging(peer),
    };
  }

  /** What the responder (the peers' side) sees of the driver. */
  private responderHost(): ResponderHost {
    return {
      node: this.node,
      counters: this.counters,
      send: (peer, m) => this.links.get(peer)?.send(m) ?? false,
      connected: (peer) => this.links.has(peer),
      merge: (peer, entries) => this.mergeFrom(peer, entries),
      noteIncarnation: (peer, inc) => this.noteIncarnation(peer, inc),
      coverageKnown: () => this.rounds.coverageKnown,
      now: () => this.sched.now(),
    };
  }

  start(): void {
    this.node.on('change', this.onChange);
    this.transport.start({
      linkUp: (l) => this.linkUp(l),
      linkDown: (p, why) => this.linkDown(p, why),
      message: (p, m) => this.onMessage(p, m),
    });
    const known = this.members.start();
    // Nobody to recover our old writes from: local writes may start now.
    if (this.node.awaitingSeqRecovery && this.opts.seeds.length === 0 && known === 0) {
      this.node.seqRecovered();
    }
    this.gcTimer = this.sched.setTimeout(() => this.gc(), this.opts.gcIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.node.off('change', this.onChange);
    this.push.stop();
    if (this.gcTimer !== null) this.sched.clearTimeout(this.gcTimer);
    for (const info of this.peers.values())
      if (info.roundTimer !== null) this.sched.clearTimeout(info.roundTimer);
    this.requests.failAll('sync stopped');
    await this.transport.close();
  }

  /** Forget a retired member: it no longer holds tombstone GC back. */
  async forgetPeer(peer: NodeId): Promise<void> {
    this.transport.hangUp(peer);
    await forgetMember(this.node, peer);
  }

  /** Serve block requests from peers (filesync's content transfer rides the same socket). */
  serveBlocks(fn: BlockServer): void {
    this.blocks.serve(fn);
  }

  /** Ask `peer` for one block; null when it cannot serve it. */
  fetchBlock(peer: NodeId, ref: BlockRef): Promise<Uint8Array | null> {
    return this.blocks.fetch(peer, ref);
  }

  /** Ask `peer` for up to MAX_BATCH_REFS blocks in one message; one slot per ref, in order. */
  fetchBlocks(peer: NodeId, refs: readonly BlockRef[]): Promise<(Uint8Array | null)[]> {
    return this.blocks.fetchBatch(peer, refs);
  }

  /** The acks `peer` last reported (what it covers), if any. */
  peerAcksOf(peer: NodeId): ReadonlyMap<NodeId, number> | undefined {
    return this.node.state.peerAcks.get(peer);
  }

  get linkedPeers(): NodeId[] {
    return [...this.links.keys()];
  }

  peerInfo(peer: NodeId): Readonly<PeerInfo> & { connected: boolean; advertise: string | null } {
    const info = this.info(peer);
    return {
      ...info,
      connected: this.links.has(peer),
      advertise: this.links.get(peer)?.advertise ?? null,
    };
  }

  get pushCounters(): Readonly<PushRelay['counters']> {
    return this.push.counters;
  }

  private info(peer: NodeId): PeerInfo {
    let i = this.peers.get(peer);
    if (i === undefined) {
      i = {
        incarnation: null,
        roundTimer: null,
        inRound: false,
        lastRoundAt: null,
        rttMs: null,
        rounds: 0,
        mismatches: 0,
        digestAgrees: null,
        repairs: 0,
        resetPending: false,
      };
      this.peers.set(peer, i);
    }
    return i;
  }

  /** A peer seen with a known id but a new incarnation was rebuilt: what we knew of it is void. */
  private noteIncarnation(peer: NodeId, incarnation: string): void {
    const info = this.info(peer);
    if (info.incarnation !== null && info.incarnation !== incarnation) {
      log.warn('peer has a new incarnation (rebuilt, or an id clash); forgetting its acks', {
        peer,
      });
      this.node.state.forgetPeer(peer);
      this.responder.views.forget(peer);
    }
    info.incarnation = incarnation;
  }

  private linkUp(link: PeerLink): void {
    if (this.stopped || link.peer === this.node.id) return;
    if (!this.members.admit(link)) return;
    this.noteIncarnation(link.peer, link.incarnation);
    this.links.set(link.peer, link);
    this.responder.views.newLink(link.peer);
    log.info('peer connected', { peer: link.peer, advertise: link.advertise });
    this.members.addMember(link.peer);
    this.rounds.scheduleRound(link.peer, 0);
  }

  private linkDown(peer: NodeId, reason: string): void {
    if (!this.links.delete(peer)) return;
    log.info('peer disconnected', { peer, reason });
    const info = this.info(peer);
    if (info.roundTimer !== null) this.sched.clearTimeout(info.roundTimer);
    info.roundTimer = null;
    this.responder.views.forget(peer);
    this.push.forget(peer);
    this.node.state.forgetSource(peer);
    this.requests.failAll(`link down: ${reason}`, peer);
  }

  private onChange = (c: ChangeLike): void => {
    // Local writes go out only once durable: a seq seen by a peer before it is logged here
    // could be stamped again on another write after a crash. Remote winners went at merge.
    if (c.source === 'local') this.push.offer(c.entry, undefined);
    this.members.onEntry(c.entry);
  };

  private onMessage(peer: NodeId, msg: SyncMessage): void {
    if (this.stopped) return;
    const route = this.routes[msg.t];
    if (route !== undefined) return route(peer, msg);
    switch (msg.t) {
      case 'sync':
      case 'page':
      case 'buckets':
      case 'bucket-entries':
        return this.responder.onRequest(peer, msg);
      case 'push':
        // Confirmed only once all of it merged and is durable (merge resolves then; what it found
        // stale was durable already): the sender then leaves these out of its rounds' deltas.
        this.mergeFrom(peer, msg.entries.map(fromWire)).then(
          (whole) => {
            if (whole) this.links.get(peer)?.send({ t: 'push-ok', id: msg.id });
          },
          (e: unknown) => log.warn('push merge failed', { peer, error: String(e) }),
        );
        return;
      case 'sync-ok': {
        const entries = this.responder.delivered(peer, msg.round);
        if (entries !== undefined) this.confirmed(peer, entries);
        return;
      }
      case 'push-ok': {
        const writes = this.push.confirmed(peer, msg.id);
        if (writes !== undefined) this.confirmed(peer, writes);
        return;
      }
      case 'block':
      case 'blocks':
        return; // routed above
      default:
        this.requests.onResponse(peer, msg);
    }
  }

  /**
   * `peer` holds these writes durably (it confirmed them, or merged them whole). A relay pushes
   * a peer's winners on before its own commit of them, so the next node's confirmation can
   * come before they are in our state: those are tried again a few times as commits end.
   */
  private confirmed(peer: NodeId, writes: readonly WriteRef[], tries = 0): void {
    const state = this.node.state;
    if (tries === 0) this.counters.confirmed += writes.length;
    const ahead: WriteRef[] = [];
    this.counters.heldMarked += state.confirmHeld(peer, writes, ahead);
    if (ahead.length === 0 || tries >= CONFIRM_RETRIES || this.stopped) return;
    // Only for the link that confirmed: a peer found rebuilt meanwhile holds none of it.
    const link = state.sourceIdOf(peer);
    this.sched.setTimeout(() => {
      if (this.links.has(peer) && state.sourceIdOf(peer) === link)
        this.confirmed(peer, ahead, tries + 1);
    }, CONFIRM_RETRY_MS);
  }

  private async mergeFrom(peer: NodeId, entries: Entry[]): Promise<boolean> {
    if (entries.length === 0) return true;
    // A peer's winners are relayed as soon as they are chosen, not after our group commit:
    // they are durable at their origin already (a node pushes its own writes only once they
    // are durable, below), so our fsync adds nothing for the next node but its latency, once
    // per hop of a chain. Pushes never move acks, and the next node's source tag for us is
    // dropped when our link goes down (linkDown), so a relay that crashes before its commit
    // gets back in the next round what it relayed and lost.
    let r;
    try {
      r = await this.node.merge(entries, peer, (winners) => {
        for (const e of winners) this.push.offer(e, peer);
      });
    } catch (e) {
      // The store could not log the merge (a failed WAL refuses every write after): we may
      // have relayed entries we will never hold, and later rounds with no entries would still
      // let us adopt acks. A node that cannot persist leaves the cluster; its links drop, so
      // peers forget what they took us to hold.
      if (!this.stopped) {
        log.error('merges can no longer be logged; sync stops', { error: String(e) });
        void this.stop();
      }
      throw e;
    }
    this.counters.entriesReceived += entries.length;
    this.counters.rejected += r.rejected.length;
    let blocking = 0;
    for (const x of r.rejected) {
      // A forgery in our name claims nothing about what we cover: it parks no acks (or one
      // forged entry held by honest peers would park them for ever). Our own peer record is
      // written again above it, so the forgery loses everywhere.
      if (x.reason !== 'own-origin') blocking++;
      else if (x.key === peerKey(this.node.id) && x.meta !== undefined)
        void this.members.advertise(x.meta.ts);
    }
    return blocking === 0;
  }

  private gc(): void {
    this.gcTimer = null;
    if (this.stopped) return;
    this.node
      .collectGarbage(this.opts.tombstoneMinAgeMs)
      .then((n) => n > 0 && log.debug('tombstones collected', { count: n }))
      .catch((e: unknown) => log.warn('tombstone GC failed', { error: String(e) }))
      .finally(() => {
        if (!this.stopped)
          this.gcTimer = this.sched.setTimeout(() => this.gc(), this.opts.gcIntervalMs);
      });
  }
}
