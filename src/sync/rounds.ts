/**
 * The driver's initiator side: the rounds this node starts with each peer (send our delta,
 * pull the answer page by page, settle acks: the only authority over acks, rules 1, 2 and 5)
 * and digest repair after quiet rounds whose digests differ.
 *
 * Owns: round timing, each round's delta and paging, seq recovery of a rebuilt node at its
 * first complete round. Must not touch: requests from peers (respond.ts), links and peer
 * bookkeeping (the driver's), pushes.
 */
import type { Entry, NodeId, WriteRef } from '../core/index.js';
import { logger } from '../log/index.js';
import {
  acksFromWire,
  acksToWire,
  BUCKET_COUNT,
  fromWire,
  toWire,
  type SyncMessage,
  type SyncRequest,
  type SyncResponse,
} from './messages.js';
import { expectAnswer, type Requests } from './requests.js';
import { bucketEntries } from './respond.js';
import type { Scheduler, SyncNode, SyncOptions, TimerHandle } from './types.js';

const log = logger('sync');

/** Response pages merged at once while the next is fetched (wire, CPU and disk overlap). */
const MERGE_WINDOW = 3;

/** What this node knows of one peer's rounds (status and the TUI read it too). */
export interface PeerInfo {
  incarnation: string | null;
  roundTimer: TimerHandle | null;
  inRound: boolean;
  lastRoundAt: number | null;
  rttMs: number | null;
  rounds: number;
  /** Consecutive quiet rounds whose digests differed. */
  mismatches: number;
  digestAgrees: boolean | null;
  /** Bucket repairs since the last full re-exchange. */
  repairs: number;
  /** Our next request asks the peer for everything (acks sent empty, reset flag set). */
  resetPending: boolean;
}

/** What rounds need of the driver that hosts them. */
export interface RoundsHost {
  readonly node: SyncNode;
  readonly sched: Scheduler;
  readonly requests: Requests;
  readonly counters: {
    roundsOk: number;
    roundsFailed: number;
    entriesSent: number;
    divergences: number;
    repairs: number;
    resets: number;
  };
  info(peer: NodeId): PeerInfo;
  linked(peer: NodeId): boolean;
  send(peer: NodeId, m: SyncMessage): boolean;
  stopped(): boolean;
  merge(peer: NodeId, entries: Entry[]): Promise<boolean>;
  /** `peer` holds these writes durably: deltas to it leave them out. */
  confirmed(peer: NodeId, writes: readonly WriteRef[]): void;
  /** `peer` is paging through an answer of ours (it gets everything anyway). */
  paging(peer: NodeId): boolean;
}

export class Rounds {
  /** Until our own first complete round, our coverage is unknown: adopt nobody's acks (rule 5). */
  private firstRoundDone: boolean;

  constructor(
    private readonly host: RoundsHost,
    private readonly opts: SyncOptions,
    fresh: boolean,
  ) {
    this.firstRoundDone = !fresh;
  }

  /** Our own coverage is known: a first round has completed (or this node is not fresh). */
  get coverageKnown(): boolean {
    return this.firstRoundDone;
  }

  /** Start a round with `peer` after `delayMs`, and one each round interval after that. */
  scheduleRound(peer: NodeId, delayMs: number): void {
    const info = this.host.info(peer);
    if (info.roundTimer !== null) this.host.sched.clearTimeout(info.roundTimer);
    info.roundTimer = this.host.sched.setTimeout(() => {
      info.roundTimer = null;
      if (!this.host.linked(peer) || info.inRound || this.host.stopped()) return;
      info.inRound = true;
      this.round(peer)
        .then(() => this.host.counters.roundsOk++)
        .catch((e: unknown) => {
          this.host.counters.roundsFailed++;
          log.debug('round failed', { peer, error: String(e) });
        })
        .finally(() => {
          info.inRound = false;
          if (this.host.linked(peer) && !this.host.stopped())
            this.scheduleRound(peer, this.opts.roundIntervalMs);
        });
    }, delayMs);
  }

  /** One sync round with `peer`: send our delta, take theirs page by page, then settle acks. */
  private async round(peer: NodeId): Promise<void> {
    const info = this.host.info(peer);
    const state = this.host.node.state;
    const reset = info.resetPending;
    if (reset) state.forgetPeer(peer);
    const out = this.roundDelta(peer, reset);
    const t0 = this.host.sched.now();
    const req = (rid: number): SyncRequest => ({
      t: 'sync',
      rid,
      from: this.host.node.id,
      incarnation: this.host.node.incarnation,
      // A reset asks for everything: claim nothing, so the whole state comes back.
      acks: reset ? [] : acksToWire(state.acks()),
      entries: out.entries.map(toWire),
      complete: out.complete,
      reset,
    });
    const first = expectAnswer(await this.host.requests.request(peer, req), 'sync-res');
    info.rttMs = this.host.sched.now() - t0;
    if (reset) info.resetPending = false;
    // The peer answers only once its merge of our entries is durable.
    if (first.merged) this.host.confirmed(peer, out.entries);
    this.host.counters.entriesSent += out.entries.length;
    const { last, merged, received } = await this.pullPages(peer, first);
    // Rule 2: acks move only on the final page, and only if everything merged.
    if (merged) this.settleAcks(peer, first.rid, last, received);
    info.lastRoundAt = this.host.sched.now();
    info.rounds++;
    const quiet = out.entries.length === 0 && received === 0;
    info.digestAgrees = last.digest === state.digest;
    info.mismatches = quiet && !info.digestAgrees ? info.mismatches + 1 : 0;
    if (info.mismatches >= this.opts.repairAfterRounds) {
      info.mismatches = 0;
      await this.repair(peer, info);
    }
  }

  /**
   * What a round sends. Nothing while the peer is paging through our response (it is getting
   * everything anyway), nor while we do not know what it holds (a new link: a delta against
   * nothing is a page of everything, which the peer's own round, begun at the same moment, is
   * pulling too; this round's answer tells us its acks). A reset still sends its page: the
   * acks are what it no longer trusts.
   */
  private roundDelta(peer: NodeId, reset: boolean): { entries: Entry[]; complete: boolean } {
    const state = this.host.node.state;
    if (this.host.paging(peer) || (!reset && !state.peerAcks.has(peer)))
      return { entries: [], complete: false };
    return state.delta(state.peerAcks.get(peer) ?? new Map(), {
      maxEntries: this.opts.pageEntries,
      maxBytes: this.opts.pageBytes,
      // Not what came from the peer itself: it held each when it sent it (a relay may still
      // have been logging it: a dropped link forgets the tags, see State.forgetSource).
      skipSource: state.sourceIdOf(peer),
    });
  }

  /**
   * Take the response page by page from `first` on, merging as it comes: the wire, the CPU and
   * the disk overlap, with at most MERGE_WINDOW pages held in memory. `merged` is false if any
   * page had an entry rejected (rule 1: that parks the acks for this round).
   */
  private async pullPages(
    peer: NodeId,
    first: SyncResponse,
  ): Promise<{ last: SyncResponse; merged: boolean; received: number }> {
    const round = first.rid;
    let res = first;
    let merged = true;
    let received = 0;
    const inFlight: Promise<boolean>[] = [];
    try {
      for (;;) {
        received += res.entries.length;
        const offset = received;
        const next = res.last
          ? null
          : this.host.requests.request(peer, (rid) => ({ t: 'page', rid, round, offset }));
        next?.catch(() => undefined); // observed below; a failed merge must not leave it unhandled
        inFlight.push(this.host.merge(peer, res.entries.map(fromWire)));
        if (inFlight.length >= MERGE_WINDOW && !(await inFlight.shift()!)) merged = false;
        if (next === null) break;
        res = expectAnswer(await next, 'sync-res');
      }
    } finally {
      for (const ok of await Promise.allSettled(inFlight)) {
        if (ok.status === 'rejected' || !ok.value) merged = false;
      }
    }
    return { last: res, merged, received };
  }

  /** Every page merged and durable: confirm them, and adopt the peer's acks of the last page. */
  private settleAcks(peer: NodeId, round: number, last: SyncResponse, received: number): void {
    const state = this.host.node.state;
    // Every merge resolved once durable: the peer may count the response as held here.
    if (received > 0) this.host.send(peer, { t: 'sync-ok', round });
    const reported = acksFromWire(last.acks);
    const theirs = state.clipAcks(reported, this.host.node.limits.maxSeqJump);
    this.host.node.raiseAcks(theirs);
    state.peerAcks.set(peer, theirs);
    state.pruneHeld(peer);
    if (this.firstRoundDone) return;
    this.firstRoundDone = true;
    if (!this.host.node.awaitingSeqRecovery) return;
    // Our old writes that were superseded never come back as entries, but the peer's ack of
    // our origin says how far our seqs went. Bounded like a seq in an entry: a forged ack must
    // not exhaust our seq space.
    const ours = Math.min(
      Math.max(reported.get(this.host.node.id) ?? 0, last.yours),
      state.nextSeq - 1 + this.host.node.limits.maxSeqJump,
    );
    if (ours >= state.nextSeq) state.nextSeq = ours + 1;
    log.info('own seq recovered from peers; accepting local writes', {
      peer,
      nextSeq: state.nextSeq,
    });
    this.host.node.seqRecovered();
  }

  /**
   * Digests disagree though neither side has a delta for the other: compare bucket digests and
   * swap the differing buckets' entries; if a repair already failed to settle it, reset the
   * acks on both sides for a full re-exchange.
   */
  private async repair(peer: NodeId, info: PeerInfo): Promise<void> {
    this.host.counters.divergences++;
    if (info.repairs >= 1) {
      log.warn('digests still differ after a bucket repair; full re-exchange', { peer });
      this.host.counters.resets++;
      info.repairs = 0;
      info.resetPending = true;
      return;
    }
    info.repairs++;
    this.host.counters.repairs++;
    const theirs = expectAnswer(
      await this.host.requests.request(peer, (rid) => ({ t: 'buckets', rid })),
      'buckets-res',
    );
    const mine = this.host.node.state.bucketDigests();
    const buckets: number[] = [];
    for (let b = 0; b < BUCKET_COUNT; b++) if (mine[b] !== theirs.digests[b]) buckets.push(b);
    log.warn('digest divergence; repairing buckets', { peer, buckets: buckets.length });
    if (buckets.length === 0) return;
    const entries = bucketEntries(this.host.node.state, buckets, this.opts);
    const res = expectAnswer(
      await this.host.requests.request(peer, (rid) => ({
        t: 'bucket-entries',
        rid,
        buckets,
        entries: entries.map(toWire),
      })),
      'bucket-entries-res',
    );
    await this.host.merge(peer, res.entries.map(fromWire));
  }
}
