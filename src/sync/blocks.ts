import type { NodeId } from '../core/index.js';
import { MAX_BATCH_BYTES, type BlockRef, type BlockRefWire } from './messages.js';

/** What the embedder serves blocks with: the bytes, or null when it cannot. */
export type BlockServer = (peer: NodeId, ref: BlockRef) => Promise<Uint8Array | null>;

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
  return got.map((d, i) => {
    if (d === null) return null;
    if (i > 0 && bytes + d.length > MAX_BATCH_BYTES) return null;
    bytes += d.length;
    return d;
  });
}
