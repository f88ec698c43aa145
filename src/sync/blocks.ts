import type { NodeId } from '../core/index.js';
import { MAX_BATCH_BYTES, type BlockRef, type BlockRefWire } from './messages.js';

/**
 * A block served. `sent`, when given, is called once nothing reads `data` any more: until then
 * the server must not write over it (a relay lends the buffers it keeps recent blocks in, and
 * the transport writes large blocks to the socket uncopied).
 */
export interface ServedBlock {
  data: Uint8Array;
  sent?: () => void;
}

/** The block's bytes for keeping: a lent block is copied and given back at once. */
export function keptBytes(b: ServedBlock): Uint8Array {
  if (b.sent === undefined) return b.data;
  const copy = Buffer.from(b.data);
  b.sent();
  return copy;
}

/** What the embedder serves blocks with: the block, or null when it cannot. */
export type BlockServer = (peer: NodeId, ref: BlockRef) => Promise<ServedBlock | null>;

export const refToWire = (r: BlockRef): BlockRefWire => [r.key, r.node, r.seq, r.index, r.hash];

export const refFromWire = (w: BlockRefWire): BlockRef => ({
  key: w[0],
  node: w[1],
  seq: w[2],
  index: w[3],
  hash: w[4],
});

/**
 * Answer a batch: every ref served at once, then kept in order while the answer stays within
 * MAX_BATCH_BYTES (the first block always fits); the rest are answered null and asked again
 * singly. A ref that fails is null, never the batch.
 */
export async function serveBatch(
  serve: BlockServer,
  peer: NodeId,
  refs: readonly BlockRef[],
): Promise<(Uint8Array | null)[]> {
  const got = await Promise.all(refs.map((r) => serve(peer, r).catch(() => null)));
  let bytes = 0;
  return got.map((b, i) => {
    if (b === null) return null;
    const d = keptBytes(b); // a batch's blocks are small, and its answer waits for all of them
    if (i > 0 && bytes + d.length > MAX_BATCH_BYTES) return null;
    bytes += d.length;
    return d;
  });
}
