import { Digest } from './digest.js';
import type { AdmissionHook, Limits } from './limits.js';
import { deltaPage, type DeltaOptions, type DeltaPage } from './delta.js';
import { planMerge, type MergePlan } from './merge-plan.js';
import { OriginIndex } from './origin-index.js';
import { PeerMarks } from './peer-marks.js';
import { stampTs, supersedes } from './order.js';
import { COMPACT_FACTOR, COMPACT_MIN_BYTES, KeptEntry, ValueArena } from './value-arena.js';
import type { Acks, Entry, NodeId, ReadonlyAcks, StateOp, WriteRef } from './types.js';

export type { DeltaCursor, DeltaOptions, DeltaPage } from './delta.js';
export type { MergePlan } from './merge-plan.js';

/**
 * The replicated state as a pure state machine. It changes only through `apply(op)`; every
 * other method reads. Time comes in as arguments, so a simulator can drive it.
 */
export class State {
  private readonly data = new Map<string, KeptEntry>();
  private readonly origins = new OriginIndex();
  /** Source ids of peers' current links and what each confirmed holding; volatile. */
  private readonly marks = new PeerMarks();
  private readonly ackMap: Acks = new Map();
  /** origin → highest seq a peer reported covering, bounded; volatile (see heardSeq). */
  private readonly heard = new Map<NodeId, number>();
  /** origin → highest seq of any write of it applied here, superseded or not (one per origin). */
  private readonly seenSeqs = new Map<NodeId, number>();
  /** peer → the acks map it last reported. Volatile: never persisted. */
  readonly peerAcks = new Map<NodeId, Acks>();
  private readonly memberSet = new Set<NodeId>();
  private readonly digestState = new Digest();
  private readonly values = new ValueArena();
  /** Bytes of the winning values (what the arena would hold without holes). */
  private liveValueBytes = 0;
  private tombstoneCount = 0;
  /** Next seq this node will stamp; raised by every own-origin op replayed, superseded or not. */
  nextSeq = 1;
  /**
   * Whether applying an own-origin write raises this node's ack of itself. True for a node that
   * made its writes here, in seq order. False while a rebuilt node gets its old writes back from
   * peers in any order: then only a complete round may raise it.
   */
  ownAcks = true;
  /**
   * Writes in this node's name with a lower seq are a rebuilt node's past life, accepted from
   * peers (see checkOwnership); set when its seq was recovered. 1: none.
   */
  pastSeqBelow = 1;
  /**
   * key → when this node's clock first held its current tombstone (or retired value). GC age is
   * measured from here, not from the writer's ts, so clock skew between nodes can neither
   * collect a tombstone early nor hold it back. Volatile: after a restart ages start over.
   */
  private readonly deadSince = new Map<string, number>();
  /**
   * Live values the embedder counts as deletes (filesync's deleted-file records, which carry
   * what a bare tombstone cannot): aged and collected like tombstones. Null: none.
   */
  private retired: ((value: Uint8Array) => boolean) | null = null;
  /**
   * Highest ts of any tombstone this node has collected. A key with no entry may once have had
   * one up to here, so local writes stamp above it: a write made after a GC still supersedes
   * every version the collected tombstone did, whatever the local clock says.
   */
  clearedTs = 0;
  /** Highest ts of any write applied here: local writes stamp above it (see stampLocal). */
  maxTs = 0;
  /** origin → how far ahead of our clock its writes ran at most (ms; status shows it). */
  readonly aheadMs = new Map<NodeId, number>();

  constructor(readonly self: NodeId) {}

  get size(): number {
    return this.data.size;
  }

  get tombstones(): number {
    return this.tombstoneCount;
  }

  /** Tombstones and retired values waiting for collection. */
  get dead(): number {
    return this.deadSince.size;
  }

  /**
   * Name the live values that are deletes (see `retired`). Entries already held start their
   * age now: O(keys), once.
   */
  retire(test: (value: Uint8Array) => boolean, nowMs: number): void {
    this.retired = test;
    for (const [key, e] of this.data) {
      if (!this.deadSince.has(key) && this.isDead(e.value)) this.deadSince.set(key, nowMs);
    }
  }

  private isDead(value: Uint8Array | null): boolean {
    return value === null || (this.retired !== null && this.retired(value));
  }

  get digest(): string {
    return this.digestState.value;
  }

  bucketDigests(): string[] {
    return this.digestState.bucketDigests();
  }

  get members(): ReadonlySet<NodeId> {
    return this.memberSet;
  }

  /** The winning entry of a key, tombstones included. */
  get(key: string): Entry | undefined {
    return this.data.get(key);
  }

  /** Whether the entry now winning for `e.key` is the write `e` (same meta). */
  holds(e: Entry): boolean {
    return this.data.get(e.key)?.is(e.meta) === true;
  }

  /** Winning entries (tombstones included) whose key starts with `prefix`, in insertion order. */
  *entries(prefix = ''): Generator<Entry> {
    for (const [key, e] of this.data) if (key.startsWith(prefix)) yield e;
  }

  /** (node, seq) → the key whose winning entry it names. */
  keyOf(node: NodeId, seq: number): string | undefined {
    return this.origins.keyOf(node, seq);
  }

  /**
   * Apply one logged op. Returns true when the visible state changed. `nowMs` is the local
   * time it is applied at (it starts a tombstone's GC age).
   */
  apply(op: StateOp, nowMs = 0): boolean {
    switch (op.type) {
      case 'set':
        return this.applySet(op.entry, nowMs);
      case 'clear':
        return this.applyClear(op.key, op.meta);
      case 'add-peer':
        if (op.peer === this.self || this.memberSet.has(op.peer)) return false;
        this.memberSet.add(op.peer);
        return true;
      case 'remove-peer':
        this.peerAcks.delete(op.peer);
        return this.memberSet.delete(op.peer);
    }
  }

  private applySet(incoming: Entry, nowMs: number): boolean {
    const { node, seq } = incoming.meta;
    if (incoming.meta.ts > this.maxTs) this.maxTs = incoming.meta.ts;
    if (seq > (this.seenSeqs.get(node) ?? 0)) this.seenSeqs.set(node, seq);
    if (node === this.self) {
      if (seq >= this.nextSeq) this.nextSeq = seq + 1;
      if (this.ownAcks && seq > (this.ackMap.get(node) ?? 0)) this.ackMap.set(node, seq);
    }
    const cur = this.data.get(incoming.key);
    if (!supersedes(incoming.meta, cur?.meta)) return false;
    // The kept entry is a copy with the value in the arena and no source (the embedder names
    // the new winner's, if any); callers tell whether the entry they applied won by its meta.
    const e = new KeptEntry(incoming.key, incoming.meta, incoming.value, this.values);
    this.liveValueBytes += e.valueBytes - (cur?.valueBytes ?? 0);
    if (cur !== undefined) {
      const m = cur.meta;
      this.origins.remove(m.node, m.seq);
      this.digestState.toggle(cur);
      if (cur.tombstone) this.tombstoneCount--;
      this.deadSince.delete(e.key);
    }
    this.data.set(e.key, e);
    this.origins.add(node, seq, e.key);
    this.digestState.toggle(e);
    if (e.tombstone) this.tombstoneCount++;
    if (this.isDead(incoming.value)) this.deadSince.set(e.key, nowMs);
    if (this.values.handedOutBytes > COMPACT_FACTOR * this.liveValueBytes + COMPACT_MIN_BYTES) {
      this.compactValues();
    }
    return true;
  }

  /**
   * Copy every winning value into fresh slabs, leaving the holes of superseded ones behind.
   * O(live value bytes), run only after at least as many bytes were written: amortised O(1).
   */
  private compactValues(): void {
    this.values.restart();
    for (const e of this.data.values()) e.moveInto(this.values);
  }

  /**
   * GC: drop the entry only if it is still exactly the winner named. A tombstone or a retired
   * value: the check was made when the op was logged (a WAL replays before the embedder names
   * its retired values).
   */
  private applyClear(key: string, meta: Entry['meta']): boolean {
    const cur = this.data.get(key);
    if (cur === undefined || !cur.is(meta)) return false;
    this.data.delete(key);
    this.origins.remove(meta.node, meta.seq);
    this.digestState.toggle(cur);
    this.liveValueBytes -= cur.valueBytes;
    if (cur.tombstone) this.tombstoneCount--;
    this.deadSince.delete(key);
    if (meta.ts > this.clearedTs) this.clearedTs = meta.ts;
    return true;
  }

  /** Stamp a local write on top of the current winner (or `floorTs`, a pending write's ts). */
  stampLocal(key: string, value: Uint8Array | null, nowMs: number, floorTs = -1): Entry {
    const cur = this.data.get(key)?.meta;
    // Hybrid logical clock: never below the highest ts seen, so a write made after seeing a
    // version supersedes it whatever the wall clocks say (a node hours behind included).
    let ts = Math.max(stampTs(nowMs, cur), this.maxTs + 1);
    if (cur === undefined && ts <= this.clearedTs) ts = this.clearedTs + 1;
    if (ts <= floorTs) ts = floorTs + 1;
    const seq = this.nextSeq++;
    return { key, value, meta: { node: this.self, seq, ts } };
  }

  /**
   * Check a batch of incoming entries (limits, admission, total keys) and pick those that win.
   * Pure: nothing changes until the caller logs and applies the winners. See merge-plan.ts.
   */
  planMerge(
    entries: readonly Entry[],
    nowMs: number,
    limits: Readonly<Limits>,
    admit?: AdmissionHook,
    /** False for this node's own local write; true for anything a peer sent. */
    remote = true,
  ): MergePlan {
    return planMerge(this, entries, nowMs, limits, admit, remote);
  }

  /** Remember the largest clock lead seen per origin (bounded: one number per origin). */
  noteAhead(node: NodeId, aheadMs: number): void {
    if (aheadMs > (this.aheadMs.get(node) ?? 0)) this.aheadMs.set(node, aheadMs);
  }

  /** The highest seq of `node` this state covers or has applied a write of (0 when none). */
  knownSeq(node: NodeId): number {
    if (node === this.self) return this.nextSeq - 1;
    return Math.max(this.ack(node), this.seenSeqs.get(node) ?? 0);
  }

  /**
   * Acks a peer reported, clipped to seqs that exist here: never above the highest seq held or
   * covered for each origin (for this node, above its last stamped seq). A forged ack would
   * otherwise make this node skip that origin's real writes, pass it on, and persist it.
   */
  clipAcks(theirs: ReadonlyAcks, maxSeqJump: number): Acks {
    const out: Acks = new Map();
    for (const [node, seq] of theirs) {
      const known = this.knownSeq(node);
      const clipped = Math.min(seq, known);
      if (clipped > 0) out.set(node, clipped);
      // Kept apart, bounded, for a rebuilt origin asking how far its seqs went (heardSeq).
      const heard = Math.min(seq, known + maxSeqJump);
      if (heard > (this.heard.get(node) ?? 0)) this.heard.set(node, heard);
    }
    return out;
  }

  /**
   * The highest seq of `node`'s writes this state holds, covers, or heard a peer claim to
   * cover (bounded): never used as coverage, only to tell a rebuilt node where to resume.
   */
  heardSeq(node: NodeId): number {
    return Math.max(this.knownSeq(node), this.heard.get(node) ?? 0);
  }

  /**
   * Live entries (tombstones included) whose seq is above `acks[origin]`, ordered by
   * (origin, seq) and cut into pages by entry count and bytes (see delta.ts).
   */
  delta(acks: ReadonlyAcks, opts: DeltaOptions): DeltaPage {
    const held = opts.skipSource === undefined ? undefined : this.marks.heldBy(opts.skipSource);
    return deltaPage(this.origins, (key) => this.data.get(key)!, held, acks, opts);
  }

  /**
   * Record where the entry now winning for `key` came from (a small id the embedder gives each
   * peer incarnation), so deltas for that peer can leave it out. Volatile, like peerAcks: lost
   * on restart, which only costs sending such entries back once. Cleared whenever the key's
   * entry changes, so a tag never outlives the entry it was given for.
   */
  setSource(key: string, meta: Entry['meta'], source: number): void {
    const e = this.data.get(key);
    if (e?.is(meta) === true) e.source = source;
  }

  /**
   * The source id of `peer`'s current incarnation and link: entries merged from it are tagged
   * with it, and deltas for it leave them out (it held each when it sent it, durably or in a
   * commit under way; see `forgetSource`). Take it before the merge is logged: `peer` may be
   * found rebuilt meanwhile.
   */
  sourceIdOf(peer: NodeId): number {
    return this.marks.idOf(peer);
  }

  /**
   * Entries tagged as from `peer` are no longer taken to be held by it (they go back to it):
   * its link dropped, and a relay pushes a winner before logging it, so a relay that died may
   * never have logged what it sent. The next merge from it gets a fresh id.
   */
  forgetSource(peer: NodeId): void {
    this.marks.forget(peer);
  }

  /**
   * `peer` confirmed that it holds these writes (or newer ones of their keys) durably: deltas
   * for it leave out each that is still the winning entry here, until its link drops. Returns
   * how many were marked (a write superseded here since, or one over the bound, is not); those
   * newer than what is held here go to `ahead`.
   */
  confirmHeld(peer: NodeId, writes: readonly WriteRef[], ahead?: WriteRef[]): number {
    return this.marks.confirm(peer, writes, (key) => this.data.get(key), ahead);
  }

  /** Drop `peer`'s confirmations its acks now cover, or whose entries were superseded. */
  pruneHeld(peer: NodeId): void {
    const acks = this.peerAcks.get(peer);
    this.marks.prune(peer, (e) => {
      if (this.data.get(e.key) !== e) return false;
      const { node, seq } = e.meta;
      return seq > (acks?.get(node) ?? 0);
    });
  }

  /** The peer (current incarnation) the winning entry for `key` came from, if recorded. */
  sourceOf(key: string): NodeId | undefined {
    const tag = this.data.get(key)?.source;
    return tag === undefined || tag === 0 ? undefined : this.marks.peerOf(tag);
  }

  /**
   * `peer` was rebuilt, or a full re-exchange was asked for: forget what we know it holds (its
   * acks) and which entries came from it (it may have lost those too), so the next round sends
   * it everything.
   */
  forgetPeer(peer: NodeId): void {
    this.peerAcks.delete(peer);
    this.forgetSource(peer);
  }

  /** A copy of this node's acks (its own origin included). */
  acks(): Acks {
    return new Map(this.ackMap);
  }

  ack(node: NodeId): number {
    return this.ackMap.get(node) ?? 0;
  }

  /** Raise acks per origin (never lowers). Only the sync rules may call this. */
  raiseAcks(to: ReadonlyAcks): void {
    for (const [node, seq] of to)
      if (seq > (this.ackMap.get(node) ?? 0)) this.ackMap.set(node, seq);
  }

  /** Replace acks wholesale: recovery only. */
  restoreAcks(acks: ReadonlyAcks): void {
    this.ackMap.clear();
    for (const [node, seq] of acks) this.ackMap.set(node, seq);
  }

  /**
   * Tombstones (and retired values) every member has acknowledged and that this node has held
   * for at least `minAgeMs`: the only ones it is safe to forget.
   */
  collectableTombstones(
    nowMs: number,
    minAgeMs: number,
    /** The embedder's say on a retired value (tombstones are the core's alone). */
    mayCollect: (key: string) => boolean = () => true,
    max = 10_000,
  ): Entry[] {
    const out: Entry[] = [];
    for (const [key, since] of this.deadSince) {
      if (nowMs - since < minAgeMs) continue;
      const e = this.data.get(key)!;
      if (!e.tombstone && !mayCollect(key)) continue;
      const { node, seq } = e.meta;
      let covered = this.ack(node) >= seq;
      for (const m of this.memberSet) {
        if (!covered) break;
        covered = (this.peerAcks.get(m)?.get(node) ?? 0) >= seq;
      }
      if (covered) out.push(e);
      if (out.length >= max) break;
    }
    return out;
  }
}
