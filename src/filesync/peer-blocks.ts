import type { NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import type { SyncDriver } from '../sync/index.js';
import { BlockBatcher } from './block-batcher.js';
import { sleep, type Clock } from './clock.js';
import { sha256 } from './hasher.js';
import type { AskedPeers } from './in-flight.js';
import { pathOf } from './paths.js';
import type { Version } from './record.js';
import type { TransferVersions } from './transfer.js';

const log = logger('transfer');

/** How long to keep asking peers for a block they do not have yet (a relay still fetching it). */
const REMOTE_PATIENCE_MS = 10_000;

export class TransferError extends Error {}
/** The version being fetched is no longer the current one: the newer one is applied instead. */
export class SupersededError extends TransferError {}

/** What fetching from peers needs of the transfer. */
export interface PeerBlocksHost {
  driver: SyncDriver;
  versions: TransferVersions;
  /** Peers asked for a key now (a request from one of them for that key is never held). */
  asked: AskedPeers;
  counters: { blocksRemote: number; bytesIn: number; failures: number };
  closed(): boolean;
  clock: Clock;
}

/**
 * Blocks fetched from peers: the peer that sent us a version first, those that report holding
 * it next, each block checked against its hash; a small file's one block through a batch.
 */
export class PeerBlocks {
  private readonly batcher: BlockBatcher;

  constructor(private readonly host: PeerBlocksHost) {
    this.batcher = new BlockBatcher(host.driver, host.asked);
  }

  /** A small file's one block through the best peer's batch; null sends us the slow way. */
  batched(key: string, v: Version, hash: string): Promise<Uint8Array | null> {
    const peer = this.peersBySource(key, v)[0];
    if (peer === undefined) return Promise.resolve(null);
    return this.batcher.get(peer, { key, node: v[0], seq: v[1], index: 0, hash });
  }

  private covers(p: NodeId, v: Version): boolean {
    return (this.host.driver.peerAcksOf(p)?.get(v[0]) ?? 0) >= v[1];
  }

  /**
   * Linked peers in the order to ask them: the one that sent us version `v` (it held it), then
   * those that report holding it, then the rest. Asking another first can cost a full
   * SERVE_WAIT_MS: a peer that is itself about to fetch `v` holds the request, and in a chain
   * its only source may be us (an edit on C, relayed by B to A before A's ask of B).
   */
  private peersBySource(key: string, v: Version): NodeId[] {
    const from = this.host.versions.current(key, v) ? this.host.versions.sourceOf(key) : undefined;
    const rank = (p: NodeId): number => (p === from ? 2 : this.covers(p, v) ? 1 : 0);
    return this.host.driver.linkedPeers.sort((a, b) => rank(b) - rank(a));
  }

  /**
   * Peers that report holding this version first, then every other linked peer. In a chain the
   * next hop may still be fetching the version itself: ask again after a short, growing pause
   * (bounded) before giving up, instead of failing the whole file.
   */
  async block(key: string, v: Version, index: number, hash: string): Promise<Uint8Array> {
    const { clock } = this.host;
    const deadline = clock.now() + REMOTE_PATIENCE_MS;
    for (let pauseMs = 20; ; pauseMs = Math.min(pauseMs * 2, 500)) {
      const data = await this.tryPeers(key, v, index, hash);
      if (data !== null) return data;
      // Edited again (or deleted) at the source: no peer may ever serve this version again.
      if (!this.host.versions.current(key, v))
        throw new SupersededError(`${pathOf(key) ?? key} changed again`);
      if (this.host.closed()) throw new TransferError('shutting down');
      if (clock.now() + pauseMs > deadline) break;
      await sleep(clock, pauseMs);
    }
    this.host.counters.failures++;
    throw new TransferError(
      `no connected peer could serve block ${index} of ${pathOf(key) ?? key}`,
    );
  }

  private async tryPeers(
    key: string,
    v: Version,
    index: number,
    hash: string,
  ): Promise<Uint8Array | null> {
    for (const peer of this.peersBySource(key, v)) {
      try {
        const data = await this.host.asked.asking([key], peer, () =>
          this.host.driver.fetchBlock(peer, { key, node: v[0], seq: v[1], index, hash }),
        );
        if (data !== null && sha256(data) === hash) {
          this.host.counters.blocksRemote++;
          this.host.counters.bytesIn += data.length;
          return data;
        }
        if (data !== null) log.warn('peer sent a block that fails its hash', { peer, key, index });
      } catch (e) {
        log.debug('block request failed', { peer, key, index, error: String(e) });
      }
    }
    return null;
  }
}
