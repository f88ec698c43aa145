/** A node's identity: unsigned 32-bit, never zero. */
export type NodeId = number;

/** Names one write uniquely: the origin node, its per-origin seq, and the LWW timestamp (ms). */
export interface Meta {
  readonly node: NodeId;
  readonly seq: number;
  readonly ts: number;
}

/** A key's version. `value === null` is a tombstone. */
export interface Entry {
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly meta: Meta;
}

/** One write named without its value: enough to find the exact entry (confirmations). */
export type WriteRef = Pick<Entry, 'key' | 'meta'>;

/** origin node → highest seq of that origin this node covers (missing means 0). */
export type Acks = Map<NodeId, number>;
export type ReadonlyAcks = ReadonlyMap<NodeId, number>;

/** Every mutation of durable state; the WAL logs exactly these and recovery replays them. */
export type StateOp =
  | { readonly type: 'set'; readonly entry: Entry }
  | { readonly type: 'clear'; readonly key: string; readonly meta: Meta }
  | { readonly type: 'add-peer'; readonly peer: NodeId }
  | { readonly type: 'remove-peer'; readonly peer: NodeId };

export const MAX_NODE_ID = 0xffff_ffff;

export function isNodeId(x: unknown): x is NodeId {
  return typeof x === 'number' && Number.isInteger(x) && x > 0 && x <= MAX_NODE_ID;
}

export function isSeq(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

export function isTimestamp(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

export function isMeta(x: unknown): x is Meta {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  return isNodeId(m.node) && isSeq(m.seq) && isTimestamp(m.ts);
}

/** Shape check for an entry that came off the wire or the disk. Limits are checked separately. */
export function isEntry(x: unknown): x is Entry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return (
    typeof e.key === 'string' &&
    (e.value === null || e.value instanceof Uint8Array) &&
    isMeta(e.meta)
  );
}

export function sameMeta(a: Meta, b: Meta): boolean {
  return a.node === b.node && a.seq === b.seq && a.ts === b.ts;
}
