import type { Meta } from './types.js';

/**
 * The last-write-wins order: ts, then node, then seq; the greater wins. Tombstones get no
 * precedence, so a delete and a write are ordered like any two writes.
 */
export function compareMeta(a: Meta, b: Meta): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

/** True when `candidate` strictly supersedes `current` (or there is no current). */
export function supersedes(candidate: Meta, current: Meta | undefined): boolean {
  return current === undefined || compareMeta(candidate, current) > 0;
}

/**
 * Timestamp for a local write: never behind the key's current winner, so a write made on top
 * of what this node holds always supersedes it, even when the clocks of the writers disagree.
 */
export function stampTs(nowMs: number, current: Meta | undefined): number {
  return current === undefined ? nowMs : Math.max(nowMs, current.ts + 1);
}
