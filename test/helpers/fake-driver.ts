import {
  keptBytes,
  type BlockRequest,
  type BlockServer,
  type SyncDriver,
} from '../../src/sync/index.js';

/** Whether a request to the hanging peer 3 was made. */
export const hung = { asking: false };
/** Requests the fake driver was asked to send. */
export interface Calls {
  batches: number;
  singles: number;
  /** The peer of each request, in order. */
  peers: number[];
}
/** The block server as the tests ask it: the bytes (a copy of a lent block, given back). */
export type Serve = (peer: number, req: BlockRequest) => Promise<Uint8Array | null>;

/**
 * Just what Transfer uses of the driver: peer 1 answers from `upstream`; peer 3 (the next hop)
 * never answers while `hang` is set.
 */
export function fakeDriver(
  upstream: Map<string, Uint8Array>,
  peers = [1],
  hang = false,
): { driver: SyncDriver; serve: () => Serve; calls: Calls } {
  let serve: Serve | null = null;
  const calls: Calls = { batches: 0, singles: 0, peers: [] };
  const d = {
    serveBlocks: (fn: BlockServer) =>
      (serve = (peer, req) => fn(peer, req).then((b) => (b === null ? null : keptBytes(b)))),
    get linkedPeers() {
      return [...peers];
    },
    peerAcksOf: () => undefined,
    fetchBlock: (peer: number, req: { hash: string }) =>
      calls.peers.push(peer) && ++calls.singles && peer === 3 && hang
        ? new Promise<null>(() => (hung.asking = true))
        : Promise.resolve(upstream.get(req.hash) ?? null),
    fetchBlocks: (peer: number, refs: { hash: string }[]) =>
      calls.peers.push(peer) && ++calls.batches && peer === 3 && hang
        ? new Promise<null[]>(() => (hung.asking = true))
        : Promise.resolve(refs.map((r) => upstream.get(r.hash) ?? null)),
  };
  return { driver: d as unknown as SyncDriver, serve: () => serve!, calls };
}
