import type { NodeId } from './types.js';

/** One origin's live writes: parallel arrays sorted by seq; removed slots hold null. */
interface OriginLog {
  seqs: number[];
  keys: (string | null)[];
  dead: number;
}

/**
 * (origin node, seq) → key for the entries that currently win, derived from the data map and
 * never persisted. Writes of one origin almost always arrive in seq order, so insertion is an
 * append; removal marks a slot dead and the arrays are compacted once half of them is dead.
 */
export class OriginIndex {
  private readonly logs = new Map<NodeId, OriginLog>();

  add(node: NodeId, seq: number, key: string): void {
    let log = this.logs.get(node);
    if (log === undefined) {
      log = { seqs: [], keys: [], dead: 0 };
      this.logs.set(node, log);
    }
    const n = log.seqs.length;
    if (n === 0 || log.seqs[n - 1]! < seq) {
      log.seqs.push(seq);
      log.keys.push(key);
      return;
    }
    const i = lowerBound(log.seqs, seq);
    if (log.seqs[i] === seq) {
      if (log.keys[i] === null) log.dead--;
      log.keys[i] = key;
      return;
    }
    log.seqs.splice(i, 0, seq);
    log.keys.splice(i, 0, key);
  }

  remove(node: NodeId, seq: number): void {
    const log = this.logs.get(node);
    if (log === undefined) return;
    const i = lowerBound(log.seqs, seq);
    if (log.seqs[i] !== seq || log.keys[i] === null) return;
    log.keys[i] = null;
    log.dead++;
    if (log.dead * 2 > log.seqs.length && log.dead > 64) compact(log);
    if (log.dead === log.seqs.length) this.logs.delete(node);
  }

  keyOf(node: NodeId, seq: number): string | undefined {
    const log = this.logs.get(node);
    if (log === undefined) return undefined;
    const i = lowerBound(log.seqs, seq);
    return log.seqs[i] === seq ? (log.keys[i] ?? undefined) : undefined;
  }

  /** Origins that have live entries, ascending. */
  origins(): NodeId[] {
    return [...this.logs.keys()].sort((a, b) => a - b);
  }

  /** Live (seq, key) pairs of `node` with seq > `after`, ascending. */
  *above(node: NodeId, after: number): Generator<[seq: number, key: string]> {
    const log = this.logs.get(node);
    if (log === undefined) return;
    for (let i = upperBound(log.seqs, after); i < log.seqs.length; i++) {
      const key = log.keys[i];
      if (key !== null && key !== undefined) yield [log.seqs[i]!, key];
    }
  }

  /** Highest live seq of `node` (0 when none). */
  maxSeq(node: NodeId): number {
    const log = this.logs.get(node);
    if (log === undefined) return 0;
    for (let i = log.seqs.length - 1; i >= 0; i--) if (log.keys[i] !== null) return log.seqs[i]!;
    return 0;
  }
}

function compact(log: OriginLog): void {
  const seqs: number[] = [];
  const keys: (string | null)[] = [];
  for (let i = 0; i < log.seqs.length; i++) {
    if (log.keys[i] !== null) {
      seqs.push(log.seqs[i]!);
      keys.push(log.keys[i]!);
    }
  }
  log.seqs = seqs;
  log.keys = keys;
  log.dead = 0;
}

/** First index with a[i] >= x. */
function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index with a[i] > x. */
function upperBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
