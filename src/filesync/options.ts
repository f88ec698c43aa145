import path from 'node:path';
import type { Replica } from '../replica/index.js';
import { nodeStoreDisk, type StoreDisk } from '../store/index.js';
import { realClock, type Clock } from './clock.js';
import type { Content } from './content.js';
import type { FileEventKind } from './context.js';
import { realDisk, type Disk, type DiskStat } from './disk.js';
import type { DiskIndex } from './disk-index.js';
import { RESERVED_DIR } from './paths.js';
import { BOOT_ID_FILE } from './run-marker.js';
import type { RealParents } from './safe-fs.js';
import type { IgnoreRules } from './ignore.js';
import { Transfer, type TransferVersions } from './transfer.js';
import { Watcher } from './watcher.js';

/** Every option of the directory mirror. Units are in the names. */
export interface FileSyncOptions {
  /** The directory kept identical across peers (created if missing). */
  root: string;
  /** WaveKV data dir (holds `index`, `tmp/`, `trash/` too). */
  dataDir: string;
  /** The replica's node and driver (the simulator's run without sockets). */
  replica: Pick<Replica, 'node' | 'driver'>;
  /** Extra ignore patterns (gitignore syntax) on top of `.filesyncignore`. */
  ignore?: string[];
  /** How long removed or replaced files stay in trash/. */
  keepDeletedMs?: number;
  /** Conflict copies kept per path. */
  maxConflicts?: number;
  /** Propagate deletions even when the root vanished or was emptied. */
  allowMassDelete?: boolean;
  /** Full rescan this often (the watcher is only a hint). */
  rescanIntervalMs?: number;
  /** Use the file watcher (off: rescans only). */
  watch?: boolean;
  /** Paths applied at once (many: small files spend their time waiting on fsync). */
  applyConcurrency?: number;
  /** The ports (the real disk and clock by default; the simulator's under test). */
  ports?: Partial<MirrorPorts>;
}

/** What the mirror runs on: each has a fake, so the simulator runs this same engine. */
export interface MirrorPorts {
  /** The synced tree's disk. */
  disk: Disk;
  /** The data dir's disk: the index, its journal, the mass-delete marker. */
  dataDisk: StoreDisk;
  clock: Clock;
  /** This machine's boot, to tell a killed process from a machine that went down. */
  bootId: () => Promise<string | null>;
  /** The content transfer (by default `Transfer`, over the sync driver's block requests). */
  content: (versions: TransferVersions, index: DiskIndex, parents: RealParents) => Content;
  /** Where hints of local changes come from (by default chokidar's `Watcher`). */
  hints: (
    root: string,
    ignore: IgnoreRules,
    onHint: (rel: string) => void,
    hooks: HintHooks,
  ) => Hints;
}

/** A source of hints: paths to look at now. Only hints: a rescan finds what they miss. */
export interface Hints {
  start(): Promise<void>;
  /** Directories un-ignored or made since the start are watched too. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export interface HintHooks {
  /** Hints were dropped: rescan everything. */
  onOverflow: () => void;
  /** Whether a fresh lstat of `rel` is exactly what the index holds (our own write's echo). */
  isIndexed: (rel: string, st: DiskStat) => boolean;
}

export interface FileEvent {
  kind: FileEventKind;
  path: string;
  detail?: string;
  timeMs: number;
}

/**
 * Where downloads and removed files wait: `<root>/.filesync`, on the root's filesystem whatever
 * `--data-dir` says, since both are renamed into or out of the tree (across filesystems a
 * rename fails with EXDEV, for ever). Never synced (the reserved name).
 */
export function workDir(root: string): string {
  return path.join(root, RESERVED_DIR);
}

/** The real disk, clock and transfer, where the options name no other. */
export function withDefaults(opts: FileSyncOptions): MirrorPorts {
  const disk = opts.ports?.disk ?? realDisk;
  const clock = opts.ports?.clock ?? realClock;
  return {
    disk,
    dataDisk: opts.ports?.dataDisk ?? nodeStoreDisk,
    clock,
    bootId:
      opts.ports?.bootId ??
      (() =>
        nodeStoreDisk.readFile(BOOT_ID_FILE).then(
          (b) => b.toString().trim(),
          () => null, // not Linux: every start after a run that did not close is a power loss
        )),
    content:
      opts.ports?.content ??
      ((versions, index, parents) =>
        new Transfer({
          root: opts.root,
          tmpDir: path.join(workDir(opts.root), 'tmp'),
          index,
          driver: opts.replica.driver,
          parents,
          versions,
          disk,
          clock,
        })),
    hints: opts.ports?.hints ?? ((...args) => new Watcher(...args)),
  };
}
