/**
 * Owns: the one clash a tree cannot hold, a path that is a file (or symlink) in one version
 * while live paths exist under it in others: the directory wins everywhere, the file's
 * content is kept as a conflict copy named after its version (the same name on every node).
 * Likewise a directory deleted while live paths it did not see arrive under it: it stays.
 * Must not touch: anything but the clashing path and its conflict copy.
 */
import path from 'node:path';
import { logger } from '../log/index.js';
import { kvFile, type Ctx, type KvFile } from './context.js';
import { lstatOr, type Disk } from './disk.js';
import { absPath, conflictName, keyOf } from './paths.js';
import {
  ancestorsOf,
  encodeRecord,
  isDeletedRecord,
  lineage,
  type FileRecord,
  type Version,
} from './record.js';
import { permBits } from './stat.js';

const log = logger('applier');

export class TypeClash {
  constructor(private readonly ctx: Ctx) {}

  /**
   * Whether a path on disk under the directory `rel` is live in the KV. Read from the
   * directory (its children only), never by walking every key: a peer pushing files over
   * directories would otherwise make each apply cost the whole state.
   */
  hasLiveChildren(rel: string): boolean {
    const { ctx } = this;
    if (!ctx.parents.ok(rel)) return false;
    let names: string[];
    try {
      names = ctx.disk.readdir(absPath(ctx.root, rel));
    } catch {
      return false;
    }
    return names.some((n) => isLive(kvFile(ctx.node, `${rel}/${n}`)));
  }

  /**
   * `kv` (a file or symlink at `rel`) arrived while live paths exist under `rel`: its content
   * goes to its conflict copy, `rel` stays (or becomes) a directory, published as one that saw
   * `kv`. The caller holds `rel`'s lock. Returns the conflict copy's path, for a scan.
   */
  async keepDirectory(rel: string, kv: KvFile): Promise<string> {
    const { ctx } = this;
    const { disk } = ctx;
    const name = conflictName(rel, kv.version[0], kv.version[1]);
    const dest = absPath(ctx.root, name);
    if (kv.record.type === 'file') {
      const tmp = await ctx.transfer.fetch(keyOf(rel), kv.record, kv.version);
      disk.utimes(tmp, new Date(), new Date(kv.record.mtimeMs));
      disk.chmod(tmp, kv.record.mode);
      ctx.parents.assert(name);
      if (lstatOr(disk, dest) === null) disk.rename(tmp, dest);
      else await ctx.trash.put(tmp, name); // made already (here, or received)
    } else if (kv.record.type === 'symlink') {
      ctx.parents.assert(name);
      if (lstatOr(disk, dest) === null) disk.symlink(kv.record.target!, dest);
    }
    await this.publishDirectory(rel, kv.version, kv.record);
    ctx.event(
      'conflict',
      rel,
      `a directory with contents wins: kept the ${kv.record.type} as ${name}`,
    );
    return name;
  }

  /** Parents of `rel` the KV says are deleted, there again for it (see keepDeletedDirectory). */
  keepDeletedParents(rel: string): void {
    const { ctx } = this;
    for (let p = path.posix.dirname(rel); p !== '.'; p = path.posix.dirname(p)) {
      const e = ctx.node.getEntry(keyOf(p));
      if (e === undefined || (e.value !== null && !isDeletedRecord(e.value))) continue;
      void ctx
        .withPath(p, () => this.keepDeletedDirectory(p))
        .catch((err: unknown) =>
          log.warn('could not keep a directory', { path: p, error: String(err) }),
        );
    }
  }

  /**
   * A live path was placed under `rel`, whose KV record is a delete: its author removed what
   * it had there and never saw this one, so the directory, made again for it, is published
   * again over the delete, as a file's kept edit is (else the KV said "deleted" for ever where
   * every disk holds it). Runs under `rel`'s own lock.
   */
  async keepDeletedDirectory(rel: string): Promise<void> {
    const { ctx } = this;
    const kv = kvFile(ctx.node, rel);
    if (kv?.record.type !== 'deleted' || !ctx.parents.ok(rel)) return;
    const st = lstatOr(ctx.disk, absPath(ctx.root, rel));
    if (st === null || !st.isDirectory() || !this.hasLiveChildren(rel)) return;
    await this.publishDirectory(rel, kv.version, kv.record);
    ctx.event('kept-edit', rel, 'a directory delete that did not see what it holds');
  }

  /**
   * A live path (`child`) arrived under `rel`, which is a regular file here: the file goes to its
   * conflict copy and `rel` becomes a directory. Runs under `rel`'s own lock (not the child's).
   * Returns the conflict copy's path, or null when there was nothing to do.
   */
  async moveFileAside(rel: string, child: string): Promise<string | null> {
    const { ctx } = this;
    if (!ctx.parents.ok(rel) || !isLive(kvFile(ctx.node, child))) return null;
    const abs = absPath(ctx.root, rel);
    const st = lstatOr(ctx.disk, abs);
    const kv = kvFile(ctx.node, rel);
    const version = ctx.index.get(rel)?.version ?? kv?.version ?? null;
    if (st === null || !st.isFile() || version === null) return null;
    if (kv !== null && kv.record.type === 'dir') return null; // the directory's apply will come
    const name = conflictName(rel, version[0], version[1]);
    ctx.parents.assert(rel);
    ctx.parents.forget();
    if (lstatOr(ctx.disk, absPath(ctx.root, name)) === null)
      ctx.disk.rename(abs, absPath(ctx.root, name));
    else await ctx.trash.put(abs, rel);
    ctx.index.delete(rel);
    await this.publishDirectory(rel, kv?.version ?? version, kv?.record ?? null);
    log.warn('a file was in the way of a directory with contents; kept it as a conflict copy', {
      path: rel,
      copy: name,
    });
    ctx.event('conflict', rel, `a directory with contents wins: kept the file as ${name}`);
    return name;
  }

  /** `rel` made a directory here (if it is not) and published as one that saw `prev`. */
  private async publishDirectory(
    rel: string,
    prev: Version,
    prevRecord: FileRecord | null,
  ): Promise<void> {
    const { ctx } = this;
    const abs = absPath(ctx.root, rel);
    ctx.parents.assert(rel);
    const st = lstatOr(ctx.disk, abs);
    if (st !== null && !st.isDirectory()) {
      ctx.parents.forget();
      await ctx.trash.put(abs, rel);
    }
    if (st === null || !st.isDirectory()) ctx.disk.mkdir(abs);
    const dir = ctx.disk.lstat(abs);
    const mode = permBits(dir.mode) | 0o700;
    const record: FileRecord = {
      type: 'dir',
      size: 0,
      mtimeMs: dir.mtimeMs,
      mode,
      hash: '',
      blocks: [],
      target: null,
      prev,
      history: lineage(prev, prevRecord),
    };
    const e = await ctx.node.put(keyOf(rel), encodeRecord(record));
    ctx.index.set(rel, {
      type: 'dir',
      size: 0,
      mtimeMs: dir.mtimeMs,
      ino: dir.ino,
      mode,
      hash: '',
      blocks: [],
      target: null,
      version: [e.meta.node, e.meta.seq],
      ancestors: ancestorsOf(record),
    });
  }
}

/**
 * After a child goes (a peer's delete applied, or the user's published), parents whose own
 * delete is already in the KV go too: their delete found them not empty, and waited for this.
 */
export function removeDeletedParents(ctx: Ctx, rel: string): void {
  for (let p = path.posix.dirname(rel); p !== '.'; p = path.posix.dirname(p)) {
    const kv = kvFile(ctx.node, p);
    if (kv?.record.type !== 'deleted' || ctx.index.get(p)?.type !== 'dir') return;
    if (!ctx.parents.ok(p)) return;
    ctx.parents.forget();
    try {
      ctx.disk.rmdir(absPath(ctx.root, p));
    } catch {
      return;
    }
    ctx.index.delete(p);
  }
}

/** The parents of `rel` that are regular files on disk (a clash to resolve), nearest first. */
export function fileParents(disk: Disk, root: string, rel: string): string[] {
  const out: string[] = [];
  for (let p = path.posix.dirname(rel); p !== '.'; p = path.posix.dirname(p)) {
    const st = lstatOr(disk, absPath(root, p));
    if (st?.isFile()) out.push(p);
  }
  return out;
}

const isLive = (kv: KvFile | null): boolean => kv !== null && kv.record.type !== 'deleted';
