import { supersedes } from './order.js';
import type { Entry, NodeId, WriteRef } from './types.js';

/**
 * Entries a peer holds (so that deltas for it can leave them out) beyond what its acks say:
 * those it confirmed holding durably (a push frame or a round's response it merged whole, or
 * the entries of our request it answered as merged), while its current link is up.
 * Bounded per peer; past the bound a confirmation is simply not kept, which costs the peer the
 * entries once more in a round, never a missing one.
 */
export const MAX_HELD_MARKS_PER_PEER = 65_536;

/**
 * What this node knows about which entries its peers hold, outside the acks: a small source id
 * per peer incarnation and link (the state tags each merged winner with its sender's id), and
 * the entries each such id confirmed. Volatile, like peerAcks: lost on restart, which only
 * costs sending some entries again. Ids are never reused, so a forgotten peer's tags on old
 * entries can never be mistaken for a later link's.
 */
export class PeerMarks {
  private readonly ids = new Map<NodeId, number>();
  private nextId = 1;
  /** source id → the exact winning entries (objects) its peer confirmed. */
  private readonly held = new Map<number, Set<Entry>>();

  /** The id of `peer`'s current link, made on first use. */
  idOf(peer: NodeId): number {
    let id = this.ids.get(peer);
    if (id === undefined) this.ids.set(peer, (id = this.nextId++));
    return id;
  }

  /** The peer whose current link has `id`, if any. */
  peerOf(id: number): NodeId | undefined {
    for (const [peer, mine] of this.ids) if (mine === id) return peer;
    return undefined;
  }

  /** Forget the peer's id and everything it confirmed; its next link gets a fresh id. */
  forget(peer: NodeId): void {
    const id = this.ids.get(peer);
    if (id !== undefined) this.held.delete(id);
    this.ids.delete(peer);
  }

  /** The entries the link with `id` confirmed (the exact objects: a newer write is not in it). */
  heldBy(id: number): ReadonlySet<Entry> | undefined {
    return this.held.get(id);
  }

  /** Record that `peer`'s current link holds `entry`; false when over the bound. */
  mark(peer: NodeId, entry: Entry): boolean {
    const id = this.idOf(peer);
    let set = this.held.get(id);
    if (set === undefined) this.held.set(id, (set = new Set()));
    if (set.size >= MAX_HELD_MARKS_PER_PEER) return false;
    set.add(entry);
    return true;
  }

  /**
   * `peer` confirmed holding these writes: mark each that is the winner `get` returns. Returns
   * how many were marked; those newer than the winner go to `ahead`.
   */
  confirm(
    peer: NodeId,
    writes: readonly WriteRef[],
    get: (key: string) => (Entry & { is(meta: Entry['meta']): boolean }) | undefined,
    ahead?: WriteRef[],
  ): number {
    let marked = 0;
    for (const w of writes) {
      const e = get(w.key);
      if (e?.is(w.meta) === true) {
        if (this.mark(peer, e)) marked++;
      } else if (ahead !== undefined && supersedes(w.meta, e?.meta)) {
        // Newer than what this state holds: most often a write this node relayed before its
        // own commit of it ended, which the peer confirmed first. The caller may try again.
        ahead.push(w);
      }
    }
    return marked;
  }

  /** Drop `peer`'s marks that `keep` says are no longer needed. */
  prune(peer: NodeId, keep: (e: Entry) => boolean): void {
    const id = this.ids.get(peer);
    const set = id === undefined ? undefined : this.held.get(id);
    if (set === undefined) return;
    for (const e of set) if (!keep(e)) set.delete(e);
  }
}
