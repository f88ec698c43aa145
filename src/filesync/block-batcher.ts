import type { NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import { MAX_BATCH_REFS, type BlockRef, type SyncDriver } from '../sync/index.js';
import { sha256 } from './hasher.js';
import type { AskedPeers } from './in-flight.js';

const log = logger('transfer');

interface Waiting {
  ref: BlockRef;
  resolve: (data: Uint8Array | null) => void;
}

/**
 * Gathers the single-block requests of small files made in one turn of the event loop into
 * one `blocks` message per peer (up to MAX_BATCH_REFS). A null answer (or a failed batch)
 * sends the caller back to the one-block path with its retries; every block is hash-checked.
 */
export class BlockBatcher {
  private readonly queues = new Map<NodeId, Waiting[]>();
  private scheduled = false;

  constructor(
    private readonly driver: SyncDriver,
    /** Where the batch's keys are noted as asked while it is out (see Transfer.serve). */
    private readonly asked: AskedPeers,
  ) {}

  get(peer: NodeId, ref: BlockRef): Promise<Uint8Array | null> {
    return new Promise((resolve) => {
      let q = this.queues.get(peer);
      if (q === undefined) this.queues.set(peer, (q = []));
      q.push({ ref, resolve });
      if (q.length >= MAX_BATCH_REFS) this.flush(peer);
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          for (const p of [...this.queues.keys()]) this.flush(p);
        });
      }
    });
  }

  private flush(peer: NodeId): void {
    const q = this.queues.get(peer);
    if (q === undefined || q.length === 0) return;
    this.queues.delete(peer);
    const refs = q.map((w) => w.ref);
    this.asked
      .asking(
        refs.map((r) => r.key),
        peer,
        () => this.driver.fetchBlocks(peer, refs),
      )
      .then(
        (data) =>
          q.forEach((w, i) => {
            const d = data[i] ?? null;
            w.resolve(d !== null && sha256(d) === w.ref.hash ? d : null);
          }),
        (e: unknown) => {
          log.debug('block batch failed', { peer, refs: refs.length, error: String(e) });
          for (const w of q) w.resolve(null);
        },
      );
  }
}
