import type { AdmissionHook, Entry, Limits, NodeId, Rejection, StateOp } from '../core/index.js';
import type { FsyncPolicy, StoreDisk } from '../store/index.js';

/** Seqs reserved per durable bump of the lease in the `node` file. */
export const SEQ_LEASE_STEP = 1 << 20;
/** Snapshot once the current WAL segment passes this size. */
export const DEFAULT_WAL_MAX_BYTES = 64 * 1024 * 1024;

export interface NodeOptions {
  /** Folder of this node's files (created if missing). */
  dataDir: string;
  /** Use this id; on an existing data dir it must match the one stored there. */
  id?: NodeId;
  /** Milliseconds since the epoch; injected so tests and the simulator control time. */
  clock?: () => number;
  limits?: Partial<Limits>;
  admit?: AdmissionHook;
  fsync?: FsyncPolicy;
  walMaxBytes?: number;
  /** Where the data dir lives (default: the real disk; the simulator passes its own). */
  disk?: StoreDisk;
  /** Told of every op as it becomes durable (the simulator checks its invariants there). */
  onDurable?: (op: StateOp) => void;
}

/** Where a change came from: this node's own write, or a merge of entries from a peer. */
export interface ChangeEvent {
  readonly entry: Entry;
  readonly source: 'local' | 'remote';
  /** The peer the entry came from, for remote changes. */
  readonly from?: NodeId;
}

export interface MergeResult {
  /** Entries that won and are now durable and visible. */
  readonly applied: Entry[];
  /** Entries already covered by what this node holds. */
  readonly stale: number;
  readonly rejected: Rejection[];
}

export interface NodeEvents {
  change: [ChangeEvent];
  rejected: [Rejection, NodeId | undefined];
}
