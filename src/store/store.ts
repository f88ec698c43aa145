import path from 'node:path';
import { State, type NodeId, type StateOp } from '../core/index.js';
import { logger } from '../log/index.js';
import { nodeStoreDisk, type StoreDisk } from './disk.js';
import { encodeSnapshot, loadSnapshot, writeSnapshot, type SnapshotStep } from './snapshot.js';
import { listSegments, recoverSegments, segmentName, WalWriter, type FsyncPolicy } from './wal.js';

const log = logger('store');

export interface StoreOptions {
  dataDir: string;
  /** Where the files live (default: the real disk; the simulator's loses unsynced writes). */
  disk?: StoreDisk;
  nodeId: NodeId;
  fsync?: FsyncPolicy;
  /** Local time (ms) ops are applied at; starts tombstone GC ages. */
  clock?: () => number;
  /** Called for every op once it is durable and applied, with whether it changed the state. */
  onApplied?: (op: StateOp, changed: boolean) => void;
}

export interface RecoveryReport {
  fromSnapshot: boolean;
  replayed: number;
  /** True when a torn or corrupt WAL tail was cut off. */
  cut: boolean;
  elapsedMs: number;
}

/**
 * Durable home of one node's state: the WAL, snapshots and recovery. An op becomes visible in
 * `state` only after its WAL record is durable, so nothing is ever shown (or replicated) that
 * a crash could take back.
 */
export class Store {
  private snapshotting: Promise<void> | null = null;
  /** walSegment of the snapshot on disk; segments below it are kept for `.bak`'s sake. */
  private snapshotSegment: number;
  private readonly disk: StoreDisk;

  private constructor(
    readonly state: State,
    private readonly wal: WalWriter,
    private readonly opts: StoreOptions,
    snapshotSegment: number,
    readonly recovery: RecoveryReport,
  ) {
    this.snapshotSegment = snapshotSegment;
    this.disk = opts.disk ?? nodeStoreDisk;
  }

  static async open(opts: StoreOptions): Promise<Store> {
    const t0 = performance.now();
    const disk = opts.disk ?? nodeStoreDisk;
    const walDir = path.join(opts.dataDir, 'wal');
    await disk.mkdirp(walDir);
    await disk.remove(path.join(opts.dataDir, 'snapshot.tmp'));
    const clock = opts.clock ?? Date.now;
    const now = clock();
    const snap = await loadSnapshot(disk, opts.dataDir, opts.nodeId, now);
    const state = snap?.state ?? new State(opts.nodeId);
    const from = snap?.walSegment ?? 0;
    const { replayed, cut } = await recoverSegments(disk, walDir, opts.nodeId, from, (op) =>
      state.apply(op, now),
    );
    let store: Store | null = null;
    const wal = new WalWriter({
      disk,
      dir: walDir,
      nodeId: opts.nodeId,
      fsync: opts.fsync ?? 'always',
      onDurable: (ops) => store!.applyDurable(ops),
    });
    const segs = await listSegments(disk, walDir);
    await wal.openSegment(Math.max(from, (segs[segs.length - 1] ?? -1) + 1));
    const recovery = {
      fromSnapshot: snap !== null,
      replayed,
      cut,
      elapsedMs: performance.now() - t0,
    };
    store = new Store(state, wal, opts, from, recovery);
    log.info('store recovered', { ...recovery, keys: state.size, nextSeq: state.nextSeq });
    return store;
  }

  private applyDurable(ops: readonly StateOp[]): void {
    const now = (this.opts.clock ?? Date.now)();
    for (const op of ops) {
      const changed = this.state.apply(op, now);
      this.opts.onApplied?.(op, changed);
    }
  }

  /** Log an op; it is applied to `state` and the promise resolves once the record is durable. */
  append(op: StateOp): Promise<void> {
    return this.wal.append(op);
  }

  /** Log several ops under one promise (one group commit when made in one turn). */
  appendMany(ops: readonly StateOp[]): Promise<void> {
    return this.wal.appendMany(ops);
  }

  get stats(): Readonly<WalWriter['stats']> {
    return this.wal.stats;
  }

  get walBytes(): number {
    return this.wal.segmentBytes;
  }

  /**
   * Take a snapshot: capture the state and switch to a new WAL segment with no group commit in
   * flight (one consistent cut), write the snapshot atomically, then drop the segments that
   * neither the new snapshot nor its `.bak` needs.
   */
  snapshot(crashAfter?: (step: SnapshotStep) => void): Promise<void> {
    this.snapshotting ??= this.takeSnapshot(crashAfter).finally(() => (this.snapshotting = null));
    return this.snapshotting;
  }

  private async takeSnapshot(crashAfter?: (step: SnapshotStep) => void): Promise<void> {
    const t0 = performance.now();
    const { bytes, segment } = await this.wal.exclusive(async () => {
      const segment = this.wal.currentSegment + 1;
      const bytes = encodeSnapshot(this.state, {
        nodeId: this.opts.nodeId,
        nextSeq: this.state.nextSeq,
        walSegment: segment,
      });
      await this.wal.openSegment(segment);
      return { bytes, segment };
    });
    await writeSnapshot(this.disk, this.opts.dataDir, bytes, crashAfter);
    const keepFrom = this.snapshotSegment;
    this.snapshotSegment = segment;
    const walDir = path.join(this.opts.dataDir, 'wal');
    for (const n of await listSegments(this.disk, walDir)) {
      if (n < keepFrom) await this.disk.remove(path.join(walDir, segmentName(n)));
    }
    log.info('snapshot written', {
      keys: this.state.size,
      bytes: bytes.length,
      walSegment: segment,
      ms: Math.round(performance.now() - t0),
    });
  }

  /** Flush, snapshot, close. */
  async close(opts: { snapshot?: boolean } = {}): Promise<void> {
    await this.wal.drain();
    if (opts.snapshot ?? true) await this.snapshot();
    else await this.snapshotting;
    await this.wal.close();
  }

  /** Drop everything not yet durable, as a crash would. For tests. */
  abandon(): void {
    this.wal.abandon();
  }
}
