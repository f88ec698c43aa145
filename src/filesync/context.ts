import type { Entry } from '../core/index.js';
import type { WaveNode } from '../node/index.js';
import type { Clock } from './clock.js';
import type { Disk } from './disk.js';
import type { DiskIndex, IndexEntry } from './disk-index.js';
import type { HeldDeletions } from './held-deletions.js';
import type { IgnoreRules } from './ignore.js';
import { keyOf } from './paths.js';
import { decodeRecord, deletedRecord, type FileRecord, type Version } from './record.js';
import type { Content } from './content.js';
import type { UnreadablePaths } from './localfs.js';
import type { RealParents } from './safe-fs.js';
import type { Trash } from './trash.js';

/** Everything the local (scanner) and remote (applier) sides share. */
export interface Ctx {
  root: string;
  /** The disk, through its port (see disk.ts; modules move behind it one by one). */
  disk: Disk;
  /** The time and timers (the simulator's virtual clock under test). */
  clock: Clock;
  node: WaveNode;
  index: DiskIndex;
  /**
   * Files renamed into place whose index entry waits on their directory's fsync (the entry is
   * only recorded once the rename is durable). The watcher's echo check reads these too: the
   * rename's event arrives during that fsync, and without them every received file cost a
   * second lstat and a scanner check that found nothing.
   */
  landing: Map<string, IndexEntry>;
  ignore: IgnoreRules;
  /** Checks that no parent of a path is a symlink; see RealParents. */
  parents: RealParents;
  /** Paths that cannot be read now: unknown, never deleted (status shows how many). */
  unreadable: UnreadablePaths;
  trash: Trash;
  transfer: Content;
  maxConflicts: number;
  allowMassDelete: boolean;
  /** Set when the root vanished or was emptied: deletions are not published meanwhile. */
  deletions: HeldDeletions;
  /**
   * The machine went down under the last run (see run-marker.ts): the index may be behind the
   * disk, so until the start scan is done a path the KV moved past is not published from it.
   */
  indexMayLag: boolean;
  /**
   * After a power loss, the paths that start scan skipped (ignored then): their index may lag
   * the disk the same way until a scan looks at them, however much later the rules change.
   */
  lagging: { ignored: (rel: string) => boolean; seen: Set<string> } | null;
  /** Events for the UI / log (received, sent, conflicts, errors). */
  event: (kind: FileEventKind, path: string, detail?: string) => void;
  /** Run `fn` with `rel` locked against every other change of that path. */
  withPath<T>(rel: string, fn: () => Promise<T>): Promise<T>;
}

export type FileEventKind =
  'published' | 'applied' | 'deleted' | 'conflict' | 'kept-edit' | 'error' | 'held';

export interface KvFile {
  entry: Entry;
  record: FileRecord;
  version: Version;
}

/** The KV's current record for a path (a bare tombstone reads as a delete without prev). */
export function kvFile(node: WaveNode, rel: string): KvFile | null {
  const entry = node.getEntry(keyOf(rel));
  if (entry === undefined) return null;
  const version: Version = [entry.meta.node, entry.meta.seq];
  if (entry.value === null) {
    // A WaveKV tombstone reads as a delete with no lineage.
    const record = deletedRecord(null, [], 0);
    return { entry, record, version };
  }
  const record = decodeRecord(entry.value);
  return record === null ? null : { entry, record, version };
}

/** Same content and metadata as far as a peer can see. */
export function sameContent(
  idx: IndexEntry,
  r: Pick<FileRecord, 'type' | 'hash' | 'target' | 'mode'>,
): boolean {
  return (
    idx.type === r.type && idx.hash === r.hash && idx.target === r.target && idx.mode === r.mode
  );
}

/**
 * What the applier needs of the local side (the scanner): a local change not scanned yet is
 * published before a remote one is judged against it, and paths the applier made (conflict
 * copies) are handed over to be scanned.
 */
export interface LocalSide {
  /** Publish `rel`'s local change, if any, under its lock (held). True if one was published. */
  checkLocked(rel: string): Promise<boolean>;
  /** Scan `rel` under its own lock, later. */
  check(rel: string): Promise<unknown>;
}
