import { entryWireBytes, type Acks, type Entry, type NodeId, type State } from '../core/index.js';
import { acksToWire, toWire, type AcksWire, type SyncResponse } from './messages.js';

/** A paged response kept for its requester: the whole delta cut from one view of the state. */
interface OpenResponse {
  /** rid of the sync request this answers. */
  round: number;
  entries: Entry[];
  acks: AcksWire;
  digest: string;
  merged: boolean;
  /** See SyncResponse.yours. */
  yours: number;
  /** The last page has been sent. */
  done: boolean;
}

/**
 * The responder's side of paging (rule 4): each answer is cut from one synchronous view of
 * the state (an array of entry references, so one pointer per entry), and pages are served by
 * (round, offset), so a repeated or delayed page request gets the same page again.
 */
export class ResponseViews {
  private readonly open = new Map<NodeId, OpenResponse>();
  /** Highest sync-request rid seen per peer on its current link. */
  private readonly lastRequest = new Map<NodeId, number>();

  constructor(
    private readonly state: State,
    private readonly pageEntries: number,
    private readonly pageBytes: number,
  ) {}

  /** False for a request repeated or overtaken on this link (drop it). */
  accept(peer: NodeId, rid: number): boolean {
    if (rid <= (this.lastRequest.get(peer) ?? 0)) return false;
    this.lastRequest.set(peer, rid);
    return true;
  }

  /** A new link: request ids start over. */
  newLink(peer: NodeId): void {
    this.lastRequest.delete(peer);
  }

  /** Forget the open view for `peer` (link down, or the peer was rebuilt). */
  forget(peer: NodeId): void {
    this.open.delete(peer);
  }

  /** True while `peer` is paging through a response it has not finished. */
  paging(peer: NodeId): boolean {
    const v = this.open.get(peer);
    return v !== undefined && !v.done;
  }

  /** Cut the view that answers request `rid`: entries, acks and digest all from now. */
  openView(peer: NodeId, rid: number, theirAcks: Acks, merged: boolean, skipSource: number): void {
    const state = this.state;
    const acks = acksToWire(state.acks());
    const digest = state.digest;
    // Not what came from the peer itself: it held each when it sent it (a relay may still
    // have been logging it: a dropped link forgets the tags, see State.forgetSource).
    const first = state.delta(theirAcks, {
      maxEntries: this.pageEntries,
      maxBytes: this.pageBytes,
      skipSource,
    });
    const entries = first.complete
      ? first.entries
      : state.delta(theirAcks, { maxEntries: Infinity, maxBytes: Infinity, skipSource }).entries;
    const yours = state.heardSeq(peer);
    this.open.set(peer, { round: rid, entries, acks, digest, merged, yours, done: false });
  }

  /** The entries of round `round`'s response if all its pages went out (for its confirmation). */
  delivered(peer: NodeId, round: number): readonly Entry[] | undefined {
    const view = this.open.get(peer);
    return view !== undefined && view.round === round && view.done ? view.entries : undefined;
  }

  /** The page of round `round` starting at `offset`, as response `rid`; a string on error. */
  page(peer: NodeId, rid: number, round: number, offset: number): SyncResponse | string {
    const view = this.open.get(peer);
    if (view === undefined || view.round !== round || offset > view.entries.length) {
      return `no open round ${round} at offset ${offset}`;
    }
    let end = offset;
    let bytes = 0;
    while (end < view.entries.length && end - offset < this.pageEntries) {
      const cost = entryWireBytes(view.entries[end]!);
      if (end > offset && bytes + cost > this.pageBytes) break;
      bytes += cost;
      end++;
    }
    // The view stays open after its last page so a repeated page request is still answered;
    // the next round replaces it.
    const last = end >= view.entries.length;
    if (last) view.done = true;
    return {
      t: 'sync-res',
      rid,
      acks: view.acks,
      digest: view.digest,
      entries: view.entries.slice(offset, end).map(toWire),
      last,
      merged: view.merged,
      yours: view.yours,
    };
  }
}
