import type { NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import { ServeBudgets, type ServeBudgetOptions } from './budget.js';
import {
  refFromWire,
  refToWire,
  serveBatch,
  type BlockServer,
  type ServedBlock,
} from './blocks.js';
import type {
  BlockRef,
  BlockRequest,
  BlocksRequest,
  ResponseMessage,
  SyncMessage,
} from './messages.js';

const log = logger('sync');

/** What the block plane uses of the driver: the links to answer on, requests to ask with. */
export interface BlockRoutes {
  /** Send on `peer`'s link; false when there is none (or it refused the frame). */
  send(peer: NodeId, msg: SyncMessage): boolean;
  /** Ask `peer`; resolves to the answer of the type asked for, rejects on error or timeout. */
  ask<T extends ResponseMessage['t']>(
    peer: NodeId,
    build: (rid: number) => SyncMessage,
    t: T,
  ): Promise<Extract<ResponseMessage, { t: T }>>;
}

export class BlockPlaneError extends Error {}

/**
 * Content blocks between peers, beside the sync protocol on the same links: an embedder
 * (filesync) serves them and fetches them through here. The driver only routes `block` and
 * `blocks` requests to it. Owns: the block serve budget per peer. Must not touch: the state.
 */
export class BlockPlane {
  private server: BlockServer | null = null;
  private readonly budgets: ServeBudgets;

  constructor(
    private readonly routes: BlockRoutes,
    budget: ServeBudgetOptions,
    nowMs: () => number,
  ) {
    this.budgets = new ServeBudgets(budget, nowMs);
  }

  /** Serve block requests from peers with `fn` (until then every request is answered null). */
  serve(fn: BlockServer): void {
    this.server = fn;
  }

  /** Ask `peer` for one block; null when it cannot serve it. */
  async fetch(peer: NodeId, ref: BlockRef): Promise<Uint8Array | null> {
    const res = await this.routes.ask(peer, (rid) => ({ t: 'block', rid, ...ref }), 'block-res');
    return res.data;
  }

  /** Ask `peer` for up to MAX_BATCH_REFS blocks in one message; one slot per ref, in order. */
  async fetchBatch(peer: NodeId, refs: readonly BlockRef[]): Promise<(Uint8Array | null)[]> {
    const build = (rid: number): SyncMessage => ({ t: 'blocks', rid, refs: refs.map(refToWire) });
    const { data } = await this.routes.ask(peer, build, 'blocks-res');
    if (data.length !== refs.length) throw new BlockPlaneError('batch answer of the wrong length');
    return data;
  }

  /** A peer asked for one block: served within its budget, else answered null. */
  onBlock(peer: NodeId, msg: BlockRequest): void {
    const serve = this.budgets.allow(peer, 64) ? this.server : null;
    const reply = (b: ServedBlock | null): void => {
      const sent = b?.sent;
      this.budgets.charge(peer, b?.data?.length ?? 0);
      const msgOut: SyncMessage = { t: 'block-res', rid: msg.rid, data: b?.data ?? null, sent };
      if (!this.routes.send(peer, msgOut)) sent?.();
    };
    if (serve === null) return reply(null);
    serve(peer, msg).then(reply, (e: unknown) => {
      log.debug('block not served', { peer, key: msg.key, error: String(e) });
      reply(null);
    });
  }

  /** A peer asked for a batch of blocks. */
  onBlocks(peer: NodeId, msg: BlocksRequest): void {
    const refs = msg.refs.map(refFromWire);
    const serve = this.budgets.allow(peer, 64 * refs.length) ? this.server : null;
    const answer =
      serve === null ? Promise.resolve(refs.map(() => null)) : serveBatch(serve, peer, refs);
    void answer.then((data) => {
      for (const d of data) this.budgets.charge(peer, d?.length ?? 0);
      this.routes.send(peer, { t: 'blocks-res', rid: msg.rid, data });
    });
  }
}
