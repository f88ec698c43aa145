import { type Acks, type Entry, type NodeId, type ReadonlyAcks } from '../core/index.js';

/**
 * The sync protocol's messages. Entries travel as [key, value, node, seq, ts] and acks as a
 * flat [node, seq, …] list: compact in msgpack and quick to validate. Everything that comes off
 * the wire goes through `parseMessage` (parse.ts) before it is used.
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
