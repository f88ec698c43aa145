/**
 * The simulated machines of the mirror simulator, and what its checks read off them: each
 * tree as paths and contents, and where trees or KVs disagree.
 */
import type { Meta, NodeId, StateOp } from '../../src/core/index.js';
import type { FileSync } from '../../src/filesync/engine.js';
import { IgnoreRules } from '../../src/filesync/ignore.js';
import type { MemDisk } from '../../src/filesync/mem-disk.js';
import { FILE_PREFIX, pathOf } from '../../src/filesync/paths.js';
import { decodeRecord, type FileRecord, type Version } from '../../src/filesync/record.js';
import type { WaveNode } from '../../src/node/index.js';
import type { MemStoreDisk } from '../../src/store/index.js';
import type { SyncDriver } from '../../src/sync/index.js';
import { hashOf } from './hashes.js';
import type { SimHints } from './sim-hints.js';

export const ROOT = '/m';
/** The paths users edit: few, so edits clash. */
export const PATHS = ['a', 'b', 'c', 'd', 'e', 'd0/f', 'd0/g', 'd1/f'];

/** One machine: its disks survive crashes; its process (node, driver, mirror) does not. */
export interface Machine {
  id: NodeId;
  store: MemStoreDisk;
  tree: MemDisk;
  skewMs: number;
  seeds: string[];
  gen: number;
  node: WaveNode | null;
  driver: SyncDriver | null;
  mirror: FileSync | null;
  /** The running mirror's hint source (its watcher's stand-in). */
  hints: SimHints | null;
  started: boolean;
  opened: boolean;
  /** Counts the machine's boots: a power cut is a new one (a kill is not). */
  boots: number;
  /** key → the newest delete record this machine's store collected there (durably). */
  collected: Map<string, Meta>;
}

/** Up to three keys the KVs disagree on, with each machine's version there. */
export function kvDiff(machines: Machine[]): string {
  const kvs = machines
    .filter((m) => m.node !== null)
    .map((m) => {
      const out = new Map<string, string>();
      for (const e of m.node!.entries('', { tombstones: true }))
        out.set(e.key, `${e.meta.node}:${e.meta.seq}${e.value === null ? 'x' : ''}`);
      return [m.id, out] as const;
    });
  const keys = new Set(kvs.flatMap(([, kv]) => [...kv.keys()]));
  const odd = [...keys].filter((k) => new Set(kvs.map(([, kv]) => kv.get(k))).size > 1);
  return odd
    .slice(0, 3)
    .map((k) => `${k}: ${kvs.map(([id, kv]) => `${id}=${kv.get(k) ?? '-'}`).join(' ')}`)
    .join('; ');
}

/** Up to three paths the trees disagree on, with what each machine holds there. */
export function treeDiff(machines: Machine[]): string {
  const trees = machines.map((m) => [m.id, treeOf(m.tree)] as const);
  const paths = new Set(trees.flatMap(([, t]) => [...t.keys()]));
  const odd = [...paths].filter((p) => new Set(trees.map(([, t]) => t.get(p))).size > 1);
  const show = (v: string | undefined): string => (v === undefined ? '-' : v.slice(0, 8));
  return odd
    .slice(0, 3)
    .map((p) => `${p}: ${trees.map(([id, t]) => `${id}=${show(t.get(p))}`).join(' ')}`)
    .join('; ');
}

/** Files in the tree (under the root, outside the reserved dir). */
export function fileCount(disk: MemDisk): number {
  return disk
    .paths(ROOT)
    .filter((abs) => !abs.startsWith(`${ROOT}/.filesync`) && disk.lstat(abs).isFile()).length;
}

/** A tree's paths (under the root, outside the reserved dir) → content hash, or 'dir'. */
export function treeOf(
  disk: MemDisk,
  skip?: (rel: string, isDir: boolean) => boolean,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const abs of disk.paths(ROOT)) {
    const rel = abs.slice(ROOT.length + 1);
    if (rel === '' || rel === '.filesync' || rel.startsWith('.filesync/')) continue;
    const st = disk.lstat(abs);
    if (skip?.(rel, st.isDirectory()) === true) continue;
    const link = st.isSymbolicLink() ? `link:${disk.readlink(abs)}` : null;
    out.set(rel, st.isDirectory() ? 'dir' : (link ?? hashOf(disk.readFile(abs))));
  }
  return out;
}

export function sameTree(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** The tree as one process sees it: once the process is dead, every call fails. */
export function processView(tree: MemDisk, alive: () => boolean): MemDisk {
  return new Proxy(tree, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (!alive()) throw Object.assign(new Error('EIO: the process is dead'), { code: 'EIO' });
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A durable write of ours, for the trace: its record's type, content and lineage. */
export function said(op: StateOp): string {
  if (op.type !== 'set' || op.entry.value === null) return '';
  const r = decodeRecord(op.entry.value);
  if (r === null) return '';
  const v = (x: Version | null): string => (x === null ? '-' : `${x[0]}:${x[1]}`);
  return `${r.type} ${r.hash.slice(0, 8)} prev=${v(r.prev)} hist=${r.history.map(v).join(',')}`;
}

/** What `treeOf` shows for a live record's path. */
export function shown(r: FileRecord): string {
  return r.type === 'dir' ? 'dir' : r.type === 'symlink' ? `link:${r.target}` : r.hash;
}

/** The ignore rules `disk`'s ignore file sets, as the mirror reads them. */
export async function ignoredBy(disk: MemDisk): Promise<(rel: string, isDir: boolean) => boolean> {
  const rules = new IgnoreRules(ROOT, [], disk);
  await rules.reload();
  return (rel, isDir) => rules.ignores(rel, isDir);
}

/** The first path where the KV and the trees disagree (ignored and unservable ones aside). */
export function kvVersusTree(
  m0: Machine,
  hidden: (rel: string, isDir: boolean) => boolean,
  gone: Map<string, string>,
): string | null {
  const tree = treeOf(m0.tree, hidden);
  const known = new Set<string>();
  for (const e of m0.node!.entries(FILE_PREFIX, { tombstones: true })) {
    const rel = pathOf(e.key)!;
    known.add(rel);
    const r = e.value === null ? null : decodeRecord(e.value);
    if (gone.has(rel) || hidden(rel, r?.type === 'dir')) continue; // see MirrorWorld.quiet
    const want = r === null || r.type === 'deleted' ? undefined : shown(r);
    if (tree.get(rel) !== want) return `${rel} on disk is ${tree.get(rel)}, the KV says ${want}`;
  }
  for (const rel of tree.keys())
    if (!known.has(rel)) return `${rel} is on every disk but was never published`;
  return null;
}
