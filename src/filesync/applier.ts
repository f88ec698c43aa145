import path from 'node:path';
import { logger } from '../log/index.js';
import { DirSyncer } from './dir-sync.js';
import { kvFile, type Ctx, type KvFile, type LocalSide } from './context.js';
import { lstatOr, type DiskStat } from './disk.js';
import type { IndexEntry } from './disk-index.js';
import { absPath, conflictOrigin, isConflictCopy, keyOf } from './paths.js';
import {
  descendsFrom,
  encodeRecord,
  ancestorsOf,
  lineage,
  MAX_HISTORY,
  sameVersion,
  type FileRecord,
} from './record.js';
import { ensureRealParents, UnsafePathError } from './safe-fs.js';
import { ConflictCopies } from './conflict-copies.js';
import { fileParents, removeDeletedParents, TypeClash } from './type-clash.js';
import { notIndexed, permBits } from './stat.js';

const log = logger('applier');

/** Fetches started again when the user keeps changing a path while its version is fetched. */
const MAX_REFETCHES = 3;

/** The user changed the path while the version for it was fetched: theirs is judged first. */
export class ChangedDuringFetch extends Error {
  readonly code = 'ECHANGEDDURINGFETCH';
  constructor(rel: string) {
    super(`${rel} changed while its new version was fetched`);
  }
}

export type { LocalSide } from './context.js';

/**
 * The remote side: bring the disk to the KV's version of a path. It never destroys what the
 * author of the change did not see: a concurrent edit is kept as a conflict copy, and a delete
 * that did not see the local version leaves the file and re-publishes it.
 */
export class Applier {
  private readonly dirs: DirSyncer;
  private readonly clash: TypeClash;
  private readonly copies: ConflictCopies;

  constructor(
    private readonly ctx: Ctx,
    private readonly scanner: LocalSide,
  ) {
    this.clash = new TypeClash(ctx);
    this.copies = new ConflictCopies(ctx, scanner);
    this.dirs = new DirSyncer(ctx.disk);
  }

  /**
   * A parent of `rel` is a regular file here while `rel` is live: the file is moved aside
   * under the parent's own lock (the apply of `rel` is retried). False when no parent is a file.
   */
  private fileInTheWay(rel: string): boolean {
    const files = fileParents(this.ctx.disk, this.ctx.root, rel);
    for (const p of files) {
      void this.ctx
        .withPath(p, () => this.clash.moveFileAside(p, rel))
        .then((copy) => copy !== null && this.scanner.check(copy))
        .catch((e: unknown) =>
          log.warn('could not move a file aside', { path: p, error: String(e) }),
        );
    }
    return files.length > 0;
  }

  apply(rel: string): Promise<void> {
    return this.ctx.withPath(rel, async () => {
      for (let tries = 1; ; tries++) {
        try {
          return await this.applyLocked(rel);
        } catch (e) {
          // Started again: the local side publishes the change first (see placeFile).
          if (!(e instanceof ChangedDuringFetch) || tries >= MAX_REFETCHES) throw e;
        }
      }
    });
  }

  private async applyLocked(rel: string): Promise<void> {
    const { ctx } = this;
    if (ctx.ignore.ignores(rel)) return;
    let kv = kvFile(ctx.node, rel);
    if (kv === null) return;
    if (sameVersion(ctx.index.get(rel)?.version ?? null, kv.version)) return;
    // A local change not scanned yet is published first, so it is judged like any other.
    if (await this.scanner.checkLocked(rel)) {
      kv = kvFile(ctx.node, rel);
      if (kv === null || sameVersion(ctx.index.get(rel)?.version ?? null, kv.version)) return;
    }
    if (!(kv.record.type === 'deleted' ? ctx.parents.ok(rel) : this.parentsReady(rel))) {
      if (kv.record.type !== 'deleted' && this.fileInTheWay(rel))
        throw new Error('a parent is a file here: it is being moved aside');
      log.warn('not applying: a parent directory is a symlink', { path: rel });
      ctx.event('error', rel, 'parent is a symlink');
      return;
    }
    const local = ctx.index.get(rel);
    const concurrent =
      local !== undefined && local.version !== null && !descendsFrom(kv.record, local.version);
    if (kv.record.type === 'deleted') return this.applyDelete(rel, kv, local, concurrent);
    // Only over a directory here: a file placed where live paths are still to come is moved
    // aside when the first of them arrives (fileInTheWay).
    if (kv.record.type !== 'dir' && local?.type === 'dir' && this.clash.hasLiveChildren(rel)) {
      void this.scanner.check(await this.clash.keepDirectory(rel, kv));
      return;
    }
    if (
      concurrent &&
      local!.type === 'file' &&
      !isConflictCopy(rel) &&
      local!.hash !== kv.record.hash
    ) {
      await this.copies.keep(rel, local!);
    }
    await this.materialise(rel, kv);
    if (isConflictCopy(rel)) void this.copies.cap(conflictOrigin(rel));
    this.clash.keepDeletedParents(rel);
  }

  private async applyDelete(
    rel: string,
    kv: KvFile,
    local: IndexEntry | undefined,
    concurrent: boolean,
  ): Promise<void> {
    const { ctx } = this;
    if (local === undefined) return;
    // A delete of the very content held here saw it, under whatever version: every holder
    // re-publishes a kept edit, and a delete built on one sibling names no other (seed 447).
    const sawIt = local.type === 'file' && kv.record.hash === local.hash;
    if (concurrent && local.type !== 'dir' && !sawIt) {
      // The deleter never saw this version: keep it and publish it again over the delete. Every
      // holder does, not only its author: the author's disk may have lost it (a power cut
      // before writeback) or the author may never come back. Copies of the same content that
      // this makes on a later clash are kept once (see ConflictCopies.surplus).
      // Made on the delete (so it wins everywhere), continuing the version kept: its other
      // holders replace it instead of taking the two for a clash.
      const kept = local.version === null ? [] : [local.version];
      const history = [...kept, ...lineage(kv.version, kv.record)].slice(0, MAX_HISTORY);
      const r: FileRecord = { ...local, prev: kv.version, history };
      const e = await ctx.node.put(keyOf(rel), encodeRecord(r));
      ctx.index.set(rel, {
        ...local,
        version: [e.meta.node, e.meta.seq],
        ancestors: ancestorsOf(r),
      });
      ctx.event('kept-edit', rel, 'a delete that did not see this edit');
      return;
    }
    ctx.index.noteLanding(rel, 'deleted');
    await ctx.index.journalled();
    const abs = absPath(ctx.root, rel);
    ctx.parents.assert(rel); // after the awaits above, in the turn that removes it
    ctx.parents.forget();
    if (local.type === 'dir') {
      try {
        ctx.disk.rmdir(abs);
      } catch {
        return; // not empty yet: the deletes of its children will come, then we retry
      }
    } else {
      // A failed move to the trash fails the apply (retried with backoff): the file is still
      // here, so the index must keep it, or the next scan would publish it again as new.
      const moved = await ctx.trash.put(abs, rel);
      ctx.transfer.noteTrashed(local.hash, moved);
    }
    ctx.index.delete(rel);
    removeDeletedParents(ctx, rel);
    ctx.event('deleted', rel, 'remote');
  }

  /** Parents made where missing; false when one is a symlink or not a directory. */
  private parentsReady(rel: string): boolean {
    try {
      ensureRealParents(this.ctx.disk, this.ctx.root, rel);
      return true;
    } catch (e) {
      if (e instanceof UnsafePathError) return false;
      throw e;
    }
  }

  private async materialise(rel: string, kv: KvFile): Promise<void> {
    const { ctx } = this;
    const { disk } = ctx;
    const r = kv.record;
    const abs = absPath(ctx.root, rel);
    const local = ctx.index.get(rel);
    // New content needs no look at what is there now (done after the fetch, which takes time).
    ctx.parents.assert(rel);
    const existing =
      r.type === 'file' && !(local?.type === 'file' && local.hash === r.hash)
        ? null
        : lstatOr(disk, abs);
    if (r.type === 'dir') {
      if (existing && !existing.isDirectory()) await this.setAside(abs, rel, local);
      if (!existing || !existing.isDirectory()) {
        ctx.parents.assert(rel);
        try {
          disk.mkdir(abs);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // a child's apply made it
        }
      }
      disk.chmod(abs, r.mode | 0o700); // see the scanner: never locked out of a synced dir
    } else if (r.type === 'symlink') {
      if (existing) await this.setAside(abs, rel, local);
      ctx.parents.assert(rel);
      ctx.parents.forget(); // a path that may have been a checked directory is a link now
      disk.symlink(r.target!, abs);
    } else if (local && local.type === 'file' && existing?.isFile() && local.hash === r.hash) {
      disk.chmod(abs, r.mode); // same content: metadata only
      disk.utimes(abs, new Date(), new Date(r.mtimeMs));
    } else {
      await this.placeFile(rel, abs, kv, local);
      ctx.event('applied', rel, r.type);
      return;
    }
    ctx.index.set(rel, indexEntry(kv, disk.lstat(abs), false));
    ctx.event('applied', rel, r.type);
  }

  /** New content: fetched into tmp, then renamed over whatever is (set aside) at `abs`. */
  private async placeFile(
    rel: string,
    abs: string,
    kv: KvFile,
    local: IndexEntry | undefined,
  ): Promise<void> {
    const { ctx } = this;
    const { disk } = ctx;
    const r = kv.record;
    const tmp = await ctx.transfer.fetch(keyOf(rel), r, kv.version);
    // A user's write during the fetch (which takes time) is no version the cluster has seen:
    // set aside, it would have gone to the trash unpublished. (After a conflict copy moved
    // the local version away, the path has no entry: anything there is new.)
    if (notIndexed(lstatOr(disk, abs), ctx.index.get(rel))) throw new ChangedDuringFetch(rel);
    disk.utimes(tmp, new Date(), new Date(r.mtimeMs));
    // What we wrote, stat'ed before anyone else can touch it at `abs` (rename keeps inode, size
    // and mtime): a local change made right after the apply must still differ from the index,
    // or it would never be published.
    let st = disk.lstat(tmp);
    if (permBits(st.mode) !== r.mode) {
      disk.chmod(tmp, r.mode); // the umask took bits away (small files are created with r.mode)
      st = disk.lstat(tmp);
    }
    const entry = indexEntry(kv, st, true);
    ctx.index.noteLanding(rel, entry);
    await ctx.index.journalled();
    // Fetching took time: a parent may have been swapped meanwhile. Checked again in the turn
    // of each step below that touches `abs`.
    ctx.parents.assert(rel);
    if (lstatOr(disk, abs)) await this.setAside(abs, rel, local);
    ctx.landing.set(rel, entry);
    try {
      ctx.parents.assert(rel);
      disk.rename(tmp, abs);
      await this.dirs.sync(path.dirname(abs));
    } finally {
      ctx.landing.delete(rel);
    }
    ctx.index.set(rel, entry);
  }

  /**
   * Whatever is in the way goes to the trash (a non-empty dir in the way stops the apply), and
   * out of the index: should placing the new version fail, a scan must not find the path
   * indexed but gone, or it would publish a delete nobody made.
   */
  private async setAside(abs: string, rel: string, local: IndexEntry | undefined): Promise<void> {
    const { ctx } = this;
    ctx.parents.assert(rel);
    ctx.parents.forget();
    const st = ctx.disk.lstat(abs);
    if (st.isDirectory()) {
      ctx.disk.rmdir(abs); // throws if not empty: the children's records come first
    } else {
      const moved = await ctx.trash.put(abs, rel);
      if (local) ctx.transfer.noteTrashed(local.hash, moved);
    }
    ctx.index.delete(rel);
  }
}

/**
 * The index entry for an applied version. For files not written through tmp (metadata-only),
 * size and mtime are what the version says, not what a concurrent writer may already have
 * changed: any difference forces a rescan.
 */
function indexEntry(kv: KvFile, st: DiskStat, written: boolean): IndexEntry {
  const r = kv.record;
  const asRecorded = r.type === 'file' && !written;
  return {
    type: r.type as IndexEntry['type'],
    size: r.type === 'dir' ? 0 : asRecorded ? r.size : st.size,
    mtimeMs: asRecorded ? r.mtimeMs : st.mtimeMs,
    ino: st.ino,
    mode: permBits(st.mode),
    hash: r.hash,
    blocks: r.blocks,
    target: r.target,
    version: kv.version,
    ancestors: ancestorsOf(r),
  };
}
