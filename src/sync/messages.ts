import {
  isEntry,
  isNodeId,
  type Acks,
  type Entry,
  type NodeId,
  type ReadonlyAcks,
} from '../core/index.js';

/**
 * The sync protocol's messages. Entries travel as [key, value, node, seq, ts] and acks as a
 * flat [node, seq, …] list: compact in msgpack and quick to validate. Everything that comes off
 * the wire goes through `parseMessage` before it is used.
 */
export type EntryWire = [string, Uint8Array | null, number, number, number];
export type AcksWire = number[];

export const BUCKET_COUNT = 256;

export interface SyncRequest {
  t: 'sync';
  rid: number;
  from: NodeId;
  incarnation: string;
  acks: AcksWire;
  entries: EntryWire[];
  /** True when `entries` is the whole delta against what the responder last reported. */
  complete: boolean;
  /** Ask the responder to forget what it knows of our acks (full re-exchange). */
  reset: boolean;
}

/**
 * Ask for the page of round `round`'s response that starts at entry `offset`. Naming the
 * offset makes a repeated page request harmless: it gets the same page again.
 */
export interface PageRequest {
  t: 'page';
  rid: number;
  round: number;
  offset: number;
}

export interface SyncResponse {
  t: 'sync-res';
  rid: number;
  /** The responder's acks at the view the whole response is cut from. */
  acks: AcksWire;
  digest: string;
  entries: EntryWire[];
  /** True on the final page. */
  last: boolean;
  /** Every entry of the request merged (so the responder adopted the requester's acks or could). */
  merged: boolean;
  /**
   * The highest seq of the requester's own writes the responder knows of (held, covered, or
   * reported by others): a rebuilt requester resumes above it. Acks alone cannot say: they are
   * clipped to what the responder has seen.
   */
  yours: number;
}

export interface Push {
  t: 'push';
  /** Names the frame for its confirmation; unique among the sender's pushes (never reused). */
  id: number;
  entries: EntryWire[];
}

/**
 * Push `id` merged whole here and every entry of it (or a newer write of its key) is durable:
 * the sender may leave those entries out of its deltas to us while this link lasts. Sent only
 * then, so what it lets the sender skip is what our acks may truthfully claim (DESIGN §3's
 * rules are unchanged: a confirmation moves no acks).
 */
export interface PushConfirm {
  t: 'push-ok';
  id: number;
}

/**
 * Every page of the response to sync request `round` merged here and is durable: the responder
 * may treat the entries of that response as held by us, as for a confirmed push.
 */
export interface SyncConfirm {
  t: 'sync-ok';
  round: number;
}

export interface BucketsRequest {
  t: 'buckets';
  rid: number;
}

export interface BucketsResponse {
  t: 'buckets-res';
  rid: number;
  digests: string[];
}

/** Repair: here are my entries of these buckets; send me yours. */
export interface BucketEntriesRequest {
  t: 'bucket-entries';
  rid: number;
  buckets: number[];
  entries: EntryWire[];
}

export interface BucketEntriesResponse {
  t: 'bucket-entries-res';
  rid: number;
  entries: EntryWire[];
}

/** One block of a file version: (key, version, index, hash). Served by the embedder. */
export interface BlockRef {
  key: string;
  node: NodeId;
  seq: number;
  index: number;
  hash: string;
}

/** Ask for one block. */
export interface BlockRequest extends BlockRef {
  t: 'block';
  rid: number;
}

/** A BlockRef on the wire inside a batch: [key, node, seq, index, hash]. */
export type BlockRefWire = [string, NodeId, number, number, string];

/**
 * Ask for blocks of many small files at once (one message instead of one each: per-message
 * costs dominated receiving many small files). The answer holds one slot per ref, in order.
 */
export interface BlocksRequest {
  t: 'blocks';
  rid: number;
  refs: BlockRefWire[];
}

export interface BlocksResponse {
  t: 'blocks-res';
  rid: number;
  /** Per ref: the block's bytes, or null when this peer cannot serve it (or the batch is full). */
  data: (Uint8Array | null)[];
}

/** Refs in one batch. */
export const MAX_BATCH_REFS = 256;
/** Block bytes in one batch answer; refs past it are answered null (asked again singly). */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export interface BlockResponse {
  t: 'block-res';
  rid: number;
  /** The block's bytes, or null when this peer cannot serve it. */
  data: Uint8Array | null;
  /**
   * Never on the wire: for `data` the server reuses, what the transport calls once it no longer
   * reads it (written out or given up). A transport whose send returned false does not call it.
   */
  sent?: () => void;
}

export interface ErrorResponse {
  t: 'error';
  rid: number;
  message: string;
}

export type SyncMessage =
  | SyncRequest
  | PageRequest
  | SyncResponse
  | Push
  | PushConfirm
  | SyncConfirm
  | BucketsRequest
  | BucketsResponse
  | BucketEntriesRequest
  | BucketEntriesResponse
  | BlockRequest
  | BlockResponse
  | BlocksRequest
  | BlocksResponse
  | ErrorResponse;

export type ResponseMessage =
  | SyncResponse
  | BucketsResponse
  | BucketEntriesResponse
  | BlockResponse
  | BlocksResponse
  | ErrorResponse;

/** Largest block a peer may send (filesync's blocks are 1 MiB). */
export const MAX_BLOCK_BYTES = 1024 * 1024;

export function toWire(e: Entry): EntryWire {
  const m = e.meta;
  return [e.key, e.value, m.node, m.seq, m.ts];
}

export function fromWire(w: EntryWire): Entry {
  return { key: w[0], value: w[1], meta: { node: w[2], seq: w[3], ts: w[4] } };
}

export function acksToWire(a: ReadonlyAcks): AcksWire {
  const out: number[] = [];
  for (const [n, s] of a) out.push(n, s);
  return out;
}

export function acksFromWire(w: AcksWire): Acks {
  const out: Acks = new Map();
  for (let i = 0; i < w.length; i += 2) out.set(w[i]!, w[i + 1]!);
  return out;
}

export class ProtocolError extends Error {}

const isRid = (x: unknown): x is number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isBool = (x: unknown): x is boolean => typeof x === 'boolean';
const isStr = (x: unknown, max: number): x is string => typeof x === 'string' && x.length <= max;

function isEntryWire(x: unknown): x is EntryWire {
  if (!Array.isArray(x) || x.length !== 5) return false;
  const v: unknown = x[1];
  return isEntry({
    key: x[0],
    value: v === undefined ? null : v,
    meta: { node: x[2], seq: x[3], ts: x[4] },
  });
}

function isEntries(x: unknown, maxEntries: number): x is EntryWire[] {
  return Array.isArray(x) && x.length <= maxEntries && x.every(isEntryWire);
}

function isAcksWire(x: unknown): x is AcksWire {
  if (!Array.isArray(x) || x.length % 2 !== 0 || x.length > 2 * 100_000) return false;
  for (let i = 0; i < x.length; i += 2) {
    const s: unknown = x[i + 1];
    if (!isNodeId(x[i]) || typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) return false;
  }
  return true;
}

/**
 * Validate a decoded frame as a sync message. Throws ProtocolError naming what is wrong; the
 * transport closes the connection with that reason.
 */
export function parseMessage(x: unknown, maxEntries: number): SyncMessage {
  if (typeof x !== 'object' || x === null || Array.isArray(x))
    throw new ProtocolError('message is not a map');
  const m = x as Record<string, unknown>;
  const check = typeof m.t === 'string' ? CHECKS.get(m.t) : undefined;
  if (check === undefined) throw new ProtocolError(`unknown message type ${JSON.stringify(m.t)}`);
  const bad = check(m, maxEntries).find(([ok]) => !ok);
  if (bad !== undefined) throw new ProtocolError(`bad ${String(m.t)} message: ${bad[1]}`);
  if ('entries' in m) compactValues(m.entries as EntryWire[]);
  return m as unknown as SyncMessage;
}

/** One message type's field checks: each a (passes, what it names) pair, the first failing reported. */
type Checks = (m: Record<string, unknown>, maxEntries: number) => [boolean, string][];

const isBlockRefWire = (r: unknown): boolean =>
  Array.isArray(r) &&
  r.length === 5 &&
  isStr(r[0], 8192) &&
  isNodeId(r[1]) &&
  isRid(r[2]) &&
  isRid(r[3]) &&
  isStr(r[4], 64);
const isBlock = (d: unknown): d is Uint8Array =>
  d instanceof Uint8Array && d.length <= MAX_BLOCK_BYTES;

/** A batch answer: blocks or nulls, within the batch's count and bytes. */
function isBlockBatch(data: unknown): boolean {
  if (!Array.isArray(data) || data.length > MAX_BATCH_REFS) return false;
  let total = 0;
  return data.every(
    (d) => d === null || (isBlock(d) && (total += d.length) <= MAX_BATCH_BYTES + MAX_BLOCK_BYTES),
  );
}

/** Every message type a peer may send, and what each must hold. */
const CHECKS = new Map<string, Checks>([
  [
    'sync',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [isNodeId(m.from), 'from'],
      [isStr(m.incarnation, 64), 'incarnation'],
      [isAcksWire(m.acks), 'acks'],
      [isEntries(m.entries, n), 'entries'],
      [isBool(m.complete) && isBool(m.reset), 'flags'],
    ],
  ],
  ['page', (m) => [[isRid(m.rid) && isRid(m.round) && isRid(m.offset), 'rid, round or offset']]],
  ['buckets', (m) => [[isRid(m.rid), 'rid']]],
  [
    'sync-res',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [isAcksWire(m.acks), 'acks'],
      [isStr(m.digest, 64), 'digest'],
      [isEntries(m.entries, n), 'entries'],
      [isBool(m.last) && isBool(m.merged), 'flags'],
      [isRid(m.yours), 'yours'],
    ],
  ],
  [
    'push',
    (m, n) => [
      [isRid(m.id), 'id'],
      [isEntries(m.entries, n), 'entries'],
    ],
  ],
  ['push-ok', (m) => [[isRid(m.id), 'id']]],
  ['sync-ok', (m) => [[isRid(m.round), 'round']]],
  [
    'buckets-res',
    (m) => [
      [isRid(m.rid), 'rid'],
      [
        Array.isArray(m.digests) &&
          m.digests.length === BUCKET_COUNT &&
          m.digests.every((d) => isStr(d, 64)),
        'digests',
      ],
    ],
  ],
  [
    'bucket-entries',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [
        Array.isArray(m.buckets) &&
          m.buckets.length <= BUCKET_COUNT &&
          m.buckets.every((b) => Number.isInteger(b) && b >= 0 && b < BUCKET_COUNT),
        'buckets',
      ],
      [isEntries(m.entries, n), 'entries'],
    ],
  ],
  [
    'bucket-entries-res',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [isEntries(m.entries, n), 'entries'],
    ],
  ],
  [
    'block',
    (m) => [
      [
        isRid(m.rid) && isStr(m.key, 8192) && isNodeId(m.node) && isRid(m.seq) && isRid(m.index),
        'fields',
      ],
      [isStr(m.hash, 64), 'hash'],
    ],
  ],
  [
    'block-res',
    (m) => [
      [isRid(m.rid), 'rid'],
      [m.data === null || isBlock(m.data), 'data'],
    ],
  ],
  [
    'blocks',
    (m) => [
      [isRid(m.rid), 'rid'],
      [
        Array.isArray(m.refs) && m.refs.length <= MAX_BATCH_REFS && m.refs.every(isBlockRefWire),
        'refs',
      ],
    ],
  ],
  [
    'blocks-res',
    (m) => [
      [isRid(m.rid), 'rid'],
      [isBlockBatch(m.data), 'data'],
    ],
  ],
  [
    'error',
    (m) => [
      [isRid(m.rid), 'rid'],
      [isStr(m.message, 1000), 'message'],
    ],
  ],
]);

/**
 * Copy a message's values out of the frame into one buffer of their own, so values that live
 * on in the state neither pin the whole frame (keys, other messages' bytes) nor cost one
 * allocation each.
 */
function compactValues(entries: EntryWire[]): void {
  let total = 0;
  for (const e of entries) if (e[1] !== null) total += e[1].length;
  if (total === 0) return;
  const arena = new Uint8Array(total);
  let off = 0;
  for (const e of entries) {
    const v = e[1];
    if (v === null) continue;
    arena.set(v, off);
    e[1] = arena.subarray(off, off + v.length);
    off += v.length;
  }
}
