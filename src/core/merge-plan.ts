import {
  checkEntry,
  entryWireBytes,
  reject,
  type AdmissionHook,
  type Limits,
  type Rejection,
} from './limits.js';
import { supersedes } from './order.js';
import type { Entry, NodeId } from './types.js';

/** What a merge would do, decided before anything is logged. */
export interface MergePlan {
  /** Entries that win over the current state, in message order (log and apply these). */
  readonly winners: Entry[];
  /** Entries checked and found already covered (older or equal versions). */
  readonly stale: number;
  readonly rejected: Rejection[];
}

/** What planning a merge reads of the state (and the clock leads it notes). */
export interface PlanContext {
  readonly self: NodeId;
  readonly ownAcks: boolean;
  readonly pastSeqBelow: number;
  readonly clearedTs: number;
  readonly nextSeq: number;
  readonly size: number;
  get(key: string): Entry | undefined;
  ack(node: NodeId): number;
  knownSeq(node: NodeId): number;
  noteAhead(node: NodeId, aheadMs: number): void;
}

/**
 * Check a batch of incoming entries (limits, admission, total keys) and pick those that win.
 * Pure: nothing changes until the caller logs and applies the winners.
 */
export function planMerge(
  s: PlanContext,
  entries: readonly Entry[],
  nowMs: number,
  limits: Readonly<Limits>,
  admit?: AdmissionHook,
  /** False for this node's own local write; true for anything a peer sent. */
  remote = true,
): MergePlan {
  const rejected: Rejection[] = [];
  const winners: Entry[] = [];
  let stale = 0;
  if (entries.length > limits.maxEntriesPerMessage) {
    const detail = `${entries.length} entries, limit ${limits.maxEntriesPerMessage}`;
    return { winners, stale, rejected: [{ key: '', reason: 'too-many-entries', detail }] };
  }
  let bytes = 0;
  for (const e of entries) bytes += entryWireBytes(e);
  if (bytes > limits.maxMessageBytes) {
    const detail = `${bytes} bytes, limit ${limits.maxMessageBytes}`;
    return { winners, stale, rejected: [{ key: '', reason: 'message-too-large', detail }] };
  }
  // Later entries of the same key in one batch compete with earlier winners too.
  const planned = new Map<string, Entry>();
  const seqs = new Map<NodeId, number>(); // highest seq per origin admitted so far
  let newKeys = 0;
  for (const e of entries) {
    // Covered first: an entry that loses changes nothing, so it needs no checking (admission
    // may decode the value). Rounds resend what pushes already delivered, so most entries a
    // busy node receives are covered. Acks stay truthful: a superseded write is not live
    // anywhere, so covering its seq needs nothing from it.
    const cur = planned.get(e.key) ?? s.get(e.key);
    if (!supersedes(e.meta, cur?.meta) || (remote && cur === undefined && collected(s, e))) {
      stale++;
      continue;
    }
    const r =
      (remote ? checkOwnership(s, e, limits, seqs) : null) ?? checkEntry(e, nowMs, limits, admit);
    if (r !== null) {
      rejected.push(r);
      continue;
    }
    if (cur === undefined) {
      if (s.size + newKeys >= limits.maxKeys) {
        const detail = `state holds ${s.size + newKeys} keys, limit ${limits.maxKeys}`;
        rejected.push({ key: e.key, reason: 'too-many-keys', detail });
        continue;
      }
      newKeys++;
    }
    planned.set(e.key, e);
    if (e.meta.seq > (seqs.get(e.meta.node) ?? 0)) seqs.set(e.meta.node, e.meta.seq);
    if (remote) s.noteAhead(e.meta.node, e.meta.ts - nowMs);
    winners.push(e);
  }
  return { winners, stale, rejected };
}

/**
 * What a peer may not claim: a write in this node's name (except a rebuilt node's own past
 * writes: while it recovers them, `ownAcks` false, and below `pastSeqBelow` after), or a seq
 * far beyond what its origin has shown.
 */
function checkOwnership(
  s: PlanContext,
  e: Entry,
  limits: Readonly<Limits>,
  seqs: ReadonlyMap<NodeId, number>,
): Rejection | null {
  const { node, seq } = e.meta;
  if (node === s.self && s.ownAcks && seq >= s.pastSeqBelow)
    return reject(e, 'own-origin', `a peer sent a write in this node's name (seq ${seq})`);
  const known = Math.max(s.knownSeq(node), seqs.get(node) ?? 0);
  if (seq - known > limits.maxSeqJump)
    return reject(e, 'seq-jump', `seq ${seq} of node ${node} is far beyond ${known}`);
  return null;
}

/**
 * An entry this node saw (its origin's seq is covered here) for a key it holds nothing for,
 * no newer than the newest tombstone it collected: that tombstone or a version it superseded,
 * dead either way. Digest repair and a member back from a long absence offer exactly these;
 * taking them back resurrected collected deletes and re-exchanged them every GC cycle.
 */
function collected(s: PlanContext, e: Entry): boolean {
  const { node, seq, ts } = e.meta;
  if (ts > s.clearedTs) return false;
  return seq <= (node === s.self ? s.nextSeq - 1 : s.ack(node));
}
