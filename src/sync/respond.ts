/**
 * The driver's responder side: answers a peer's sync, page, bucket and bucket-entries requests
 * from one view of the state per answer (rule 4), within the peer's serve budget.
 *
 * Owns: the open paged answers (ResponseViews) and the serve budgets. Must not touch: rounds
 * this node starts, links (it sends through its host), the block plane.
 */
import { entryWireBytes, keyBucket, type Entry, type NodeId, type State } from '../core/index.js';
import { LogLimiter, logger } from '../log/index.js';
import { ServeBudgets } from './budget.js';
import {
  acksFromWire,
  BUCKET_COUNT,
  fromWire,
  toWire,
  type EntryWire,
  type SyncMessage,
  type SyncRequest,
} from './messages.js';
import { ResponseViews } from './responder.js';
import type { SyncNode, SyncOptions } from './types.js';

const log = logger('sync');

/** What the responder needs of the driver that hosts it. */
export interface ResponderHost {
  readonly node: SyncNode;
  readonly counters: { entriesSent: number; resets: number; throttled: number };
  send(peer: NodeId, m: SyncMessage): boolean;
  connected(peer: NodeId): boolean;
  /** Merge a peer's entries; true when every one of them merged (none blocked). */
  merge(peer: NodeId, entries: Entry[]): Promise<boolean>;
  /** The requester's incarnation, checked against the one known (a rebuilt peer's acks go). */
  noteIncarnation(peer: NodeId, incarnation: string): void;
  /** Our own coverage is known: our first complete round is done (rule 5). */
  coverageKnown(): boolean;
  now(): number;
}

type Request = Extract<SyncMessage, { t: 'sync' | 'page' | 'buckets' | 'bucket-entries' }>;

export class Responder {
  readonly views: ResponseViews;
  private readonly budgets: ServeBudgets;
  private readonly throttleLog = new LogLimiter();

  constructor(
    private readonly host: ResponderHost,
    private readonly opts: SyncOptions,
  ) {
    this.views = new ResponseViews(host.node.state, opts.pageEntries, opts.pageBytes);
    this.budgets = new ServeBudgets(opts.serveBudget, () => host.now());
  }

  /** Answer one request (a repeated or overtaken sync request is dropped). */
  onRequest(peer: NodeId, msg: Request): void {
    switch (msg.t) {
      case 'sync':
        if (!this.withinBudget(peer, msg.rid, requestBytes(msg.entries, msg.acks.length))) return;
        if (!this.views.accept(peer, msg.rid)) return;
        this.onSync(peer, msg).catch((e: unknown) => this.replyError(peer, msg.rid, e));
        return;
      case 'page':
        if (!this.withinBudget(peer, msg.rid, requestBytes([], 0))) return;
        this.sendPage(peer, msg.rid, msg.round, msg.offset);
        return;
      case 'buckets':
        if (!this.withinBudget(peer, msg.rid, requestBytes([], 0))) return;
        this.budgets.charge(peer, BUCKET_COUNT * 20);
        this.host.send(peer, {
          t: 'buckets-res',
          rid: msg.rid,
          digests: this.host.node.state.bucketDigests(),
        });
        return;
      case 'bucket-entries':
        if (!this.withinBudget(peer, msg.rid, requestBytes(msg.entries, msg.buckets.length)))
          return;
        this.onBucketEntries(peer, msg.rid, msg.buckets, msg.entries.map(fromWire)).catch(
          (e: unknown) => this.replyError(peer, msg.rid, e),
        );
    }
  }

  /** The entries of the answer `round` that `peer` confirmed merging, if it is still open. */
  delivered(peer: NodeId, round: number): readonly Entry[] | undefined {
    return this.views.delivered(peer, round);
  }

  private async onSync(peer: NodeId, req: SyncRequest): Promise<void> {
    const { node, counters } = this.host;
    if (req.from !== peer) throw new Error(`request claims to be from ${req.from}`);
    this.host.noteIncarnation(peer, req.incarnation);
    const state = node.state;
    if (req.reset) {
      // Full re-exchange: forget what we know the peer covers, so our next round sends it all,
      // including what it once sent us (a reset means it may have lost some of that).
      state.forgetPeer(peer);
      counters.resets++;
    }
    const merged = await this.host.merge(peer, req.entries.map(fromWire));
    const theirAcks = state.clipAcks(acksFromWire(req.acks), node.limits.maxSeqJump);
    // Rule 1 and 5: adopt the requester's acks only for a complete, fully merged delta, and only
    // once our own coverage is known.
    if (merged && req.complete && this.host.coverageKnown()) node.raiseAcks(theirAcks);
    state.peerAcks.set(peer, theirAcks);
    state.pruneHeld(peer);
    // Rule 4: entries, acks and digest of every page come from this one synchronous view.
    this.views.openView(peer, req.rid, theirAcks, merged, state.sourceIdOf(peer));
    this.sendPage(peer, req.rid, req.rid, 0);
  }

  private sendPage(peer: NodeId, rid: number, round: number, offset: number): void {
    if (!this.host.connected(peer)) return;
    const res = this.views.page(peer, rid, round, offset);
    if (typeof res === 'string') {
      this.host.send(peer, { t: 'error', rid, message: res });
      return;
    }
    this.host.counters.entriesSent += res.entries.length;
    this.budgets.charge(peer, wireBytes(res.entries));
    this.host.send(peer, res);
  }

  /** Whether `peer` may be answered; if not, it is told so (it tries again later). */
  private withinBudget(peer: NodeId, rid: number, bytes: number): boolean {
    if (this.budgets.allow(peer, bytes)) return true;
    this.host.counters.throttled++;
    if (this.throttleLog.allow(String(peer), this.host.now()) !== null)
      log.warn('peer asks for more than its serve budget; answering later', { peer });
    this.host.send(peer, { t: 'error', rid, message: 'busy: over its serve budget' });
    return false;
  }

  private async onBucketEntries(
    peer: NodeId,
    rid: number,
    buckets: number[],
    entries: Entry[],
  ): Promise<void> {
    await this.host.merge(peer, entries);
    const mine = bucketEntries(this.host.node.state, buckets, this.opts).map(toWire);
    this.budgets.charge(peer, wireBytes(mine));
    this.host.send(peer, { t: 'bucket-entries-res', rid, entries: mine });
  }

  private replyError(peer: NodeId, rid: number, e: unknown): void {
    log.warn('request failed', { peer, error: String(e) });
    this.host.send(peer, { t: 'error', rid, message: String(e).slice(0, 500) });
  }
}

/** This node's entries in `buckets`, at most one page of them (digest repair's exchange). */
export function bucketEntries(
  state: State,
  buckets: readonly number[],
  page: Pick<SyncOptions, 'pageEntries' | 'pageBytes'>,
): Entry[] {
  const want = new Set(buckets);
  const out: Entry[] = [];
  let bytes = 0;
  for (const e of state.entries()) {
    if (!want.has(keyBucket(e.key))) continue;
    bytes += entryWireBytes(e);
    if (out.length >= page.pageEntries || bytes > page.pageBytes) break;
    out.push(e);
  }
  return out;
}

/** Bytes a list of wire entries costs (key, value and meta), as the budgets count them. */
function wireBytes(entries: readonly EntryWire[]): number {
  let n = 0;
  for (const e of entries) n += e[0].length + (e[1]?.length ?? 0) + 32;
  return n;
}

/** About what a request cost its sender: its entries and its list of acks or buckets. */
function requestBytes(entries: readonly EntryWire[], listLength: number): number {
  return wireBytes(entries) + listLength * 8 + 32;
}
