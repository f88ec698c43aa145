import { logger } from '../log/index.js';
import { sleep } from './clock.js';
import { kvFile, sameContent, type Ctx } from './context.js';
import { lstatOr, lstatOrUnknown, type DiskDirent, type DiskStat } from './disk.js';
import type { IndexEntry } from './disk-index.js';
import { isUnreadableError, Unreadable } from './localfs.js';
import { readContent, type Content } from './read-content.js';
import {
  keepAside,
  lineageOf,
  mayBeStale,
  ownLaterWrite,
  pastVersion,
  stillLagging,
} from './index-lag.js';
import { absPath, keyOf, pathProblem } from './paths.js';
import { removeDeletedParents } from './type-clash.js';
import { permBits, typeOf, unchanged } from './stat.js';
import {
  ancestorsOf,
  encodeRecord,
  deletedRecord,
  NO_ANCESTORS,
  type FileRecord,
  type FileType,
  type Version,
} from './record.js';

const log = logger('scanner');

/** A file modified less than this long ago is looked at again before it is hashed. */
const QUIET_MS = 50;

/** How long a path must stay gone before its delete is published (see checkLocked). */
export const DELETE_QUIET_MS = 200;

/**
 * Paths checked at once during a full scan. Each check's put waits for its WAL group commit,
 * so this is how many records share one fdatasync: at 32 a 100,000-file start scan spent most
 * of its time in 3,000 fsyncs. Memory per check is one small file's bytes at most.
 */
const SCAN_CONCURRENCY = 256;

export class ChangedWhileHashing extends Error {}

/**
 * The local side: find what changed on disk and publish it. The watcher only says where to
 * look; the truth is always a fresh lstat (and a hash when size, mtime, inode or mode moved).
 */
export class Scanner {
  /** Whether this process said deletions are held (once per start, not per rescan). */
  private heldSaid = false;

  constructor(
    private readonly ctx: Ctx,
    /** How the quiet period is waited out (a test holds it to make the race certain). */
    private readonly waitMs: (ms: number) => Promise<void> = (ms) => sleep(ctx.clock, ms),
  ) {}

  /** Walk the whole tree: every path that may have changed is checked. Returns paths seen. */
  async scan(): Promise<{ seen: number; published: number }> {
    const { ctx } = this;
    const rootOk = lstatOr(ctx.disk, ctx.root)?.isDirectory() ?? false;
    const seen = new Set<string>();
    if (rootOk) await this.walk('', seen);
    // Under a directory that cannot be listed, what the index holds is unknown, not gone.
    const gone = [...ctx.index.paths()].filter((p) => !seen.has(p) && !ctx.unreadable.covers(p));
    // Safety: a vanished or emptied root while the index held files is far more likely an
    // unmounted disk or a mistake than a wish to delete everything on every peer.
    const indexedFiles = [...ctx.index.entries()].filter(([, e]) => e.type === 'file').length;
    // After a power loss an emptied root is the disk's loss, not a wish: checkGone restores.
    // One file removed is no mass delete, here as in rootLooksEmptied (whichever looks first).
    const emptied = seen.size === 0 && indexedFiles > 1 && !ctx.indexMayLag;
    const held = !rootOk || emptied;
    if (held && !ctx.allowMassDelete) {
      await this.hold(
        rootOk
          ? `the folder ${ctx.root} is empty but held ${indexedFiles} files`
          : `the folder ${ctx.root} is missing`,
      );
      return { seen: 0, published: 0 };
    }
    if (ctx.deletions.held) {
      if (gone.length === 0) {
        await ctx.deletions.release();
        log.info('deletions no longer held: every file the index holds is back');
      } else if (!this.heldSaid) {
        this.heldSaid = true;
        log.error(
          `still holding ${gone.length} deletions since the folder was emptied: restore the files, or restart with --allow-mass-delete to propagate them`,
        );
      }
    }
    // Many checks at once: their puts share WAL group commits instead of one fsync each.
    const todo = [...seen, ...gone];
    let published = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: SCAN_CONCURRENCY }, async () => {
        while (next < todo.length) if (await this.check(todo[next++]!)) published++;
      }),
    );
    return { seen: seen.size, published };
  }

  private async walk(dir: string, seen: Set<string>): Promise<void> {
    let ents: DiskDirent[];
    // The directory and its parents are real directories, checked in the turn it is listed.
    if (dir !== '' && !this.ctx.parents.ok(`${dir}/`)) return;
    try {
      ents = this.ctx.disk.readdirTyped(dir === '' ? this.ctx.root : absPath(this.ctx.root, dir));
    } catch (e) {
      const code = isUnreadableError(e);
      if (code !== null) this.ctx.unreadable.note(dir, code);
      else log.warn('cannot read directory', { dir, error: String(e) });
      return;
    }
    if (dir !== '') this.ctx.unreadable.readable(dir);
    // One directory per turn of the event loop: a large tree never stalls the sockets.
    await new Promise((r) => setImmediate(r));
    for (const d of ents) {
      const rel = dir === '' ? d.name : `${dir}/${d.name}`;
      if (pathProblem(rel) !== null || this.ctx.ignore.ignores(rel, d.isDirectory())) continue;
      if (!d.isFile() && !d.isDirectory() && !d.isSymbolicLink()) continue;
      seen.add(rel);
      if (d.isDirectory()) await this.walk(rel, seen);
    }
  }

  /** Is `st` (a fresh lstat of `rel`) exactly what the index holds? Then a check finds nothing. */
  isIndexed(rel: string, st: DiskStat): boolean {
    const idx = this.ctx.landing.get(rel) ?? this.ctx.index.get(rel);
    const type = typeOf(st);
    return idx !== undefined && type !== null && unchanged(idx, st, type);
  }

  /** Check one path under its lock; true when a change was published. */
  check(rel: string): Promise<boolean> {
    return this.ctx.withPath(rel, () => this.checkLocked(rel));
  }

  /** Check one path; the caller holds its lock. A lagging path is lagging no more once seen. */
  async checkLocked(rel: string, attempt = 0): Promise<boolean> {
    const { ctx } = this;
    const found = await this.look(rel, attempt);
    if (stillLagging(ctx, rel) && !ctx.ignore.ignores(rel)) ctx.lagging!.seen.add(rel);
    return found;
  }

  private async look(rel: string, attempt: number): Promise<boolean> {
    const { ctx } = this;
    if (pathProblem(rel) !== null) return false;
    const abs = absPath(ctx.root, rel);
    const idx = ctx.index.get(rel);
    // Under a symlinked parent the path is not in our tree (the link itself is): as if gone.
    const found = ctx.parents.ok(rel) ? lstatOrUnknown(ctx.disk, abs) : null;
    if (found instanceof Unreadable) {
      // Unknown is not deleted: nothing is published. lstat needs no right on the path itself,
      // so it is the directory it is in that may not be entered.
      const slash = rel.lastIndexOf('/');
      ctx.unreadable.note(slash > 0 ? rel.slice(0, slash) : rel, found.code);
      return false;
    }
    const st = found;
    const type = st ? typeOf(st) : null;
    // Ignored: neither published nor deleted, on this node or any other (ignoring a folder
    // to free space here must not delete it everywhere). Its entry stays for when it is not.
    if (ctx.ignore.ignores(rel, (type ?? idx?.type) === 'dir')) return false;
    if (st === null || type === null)
      return idx === undefined ? false : this.checkGone(rel, idx, st === null, attempt);
    if (idx?.type === 'dir' && type !== 'dir') await this.checkGoneChildren(rel);
    if (idx !== undefined && unchanged(idx, st, type)) {
      this.readable(rel, abs, type); // as it was when last read
      return false;
    }
    // Modified a moment ago: a writer may be between truncating and writing it (an editor's
    // save, `>` in a shell): that empty or partial state would be a spurious version.
    const ageMs = ctx.clock.now() - st.mtimeMs;
    if (type === 'file' && ageMs >= 0 && ageMs < QUIET_MS && attempt < 5) {
      await this.waitMs(QUIET_MS - ageMs);
      return this.checkLocked(rel, attempt + 1);
    }
    const content = await readContent(ctx, rel, abs, st, type);
    if (content === 'unreadable') return false;
    if (content === 'changing') {
      // Still being written: look again shortly (bounded).
      if (attempt >= 5) return false;
      await sleep(ctx.clock, 50 * (attempt + 1));
      return this.checkLocked(rel, attempt + 1);
    }
    this.readable(rel, abs, type);
    return this.publish(rel, st, type, content, idx);
  }

  /** `rel` is indexed but not there (or not synced any more): publish its delete, with care. */
  private async checkGone(
    rel: string,
    idx: IndexEntry,
    missing: boolean,
    attempt: number,
  ): Promise<boolean> {
    const { ctx } = this;
    if (missing && !ctx.allowMassDelete && attempt === 0) {
      // A delete is published after a short pause: a folder being emptied (rm -rf, a disk
      // going away) loses its files one by one, the first ones before the guard sees it.
      await this.waitMs(DELETE_QUIET_MS);
      return this.checkLocked(rel, 1);
    }
    if (missing && ctx.index.landedAt(rel) !== undefined) {
      // Moved away by an apply under way when the process died (a delete, a conflict copy,
      // a version about to take its place): no delete of ours; the KV's version applies next.
      ctx.index.delete(rel);
      return false;
    }
    if (missing && mayBeStale(ctx, kvFile(ctx.node, rel), rel)) {
      // The disk may have lost it in the power loss: the KV's version is applied again.
      ctx.index.delete(rel);
      return false;
    }
    if (missing && !ctx.allowMassDelete && (await this.rootLooksEmptied())) {
      await this.hold(`the folder ${ctx.root} is missing or empty`);
      return false;
    }
    if (ctx.deletions.held && missing) return false;
    if (idx.type === 'dir') await this.checkGoneChildren(rel);
    return this.publishDelete(rel, idx);
  }

  /** Publish what `rel` holds now, unless the index or the KV already says so. */
  private async publish(
    rel: string,
    st: DiskStat,
    type: Exclude<FileType, 'deleted'>,
    content: Content,
    idx: IndexEntry | undefined,
  ): Promise<boolean> {
    const { ctx } = this;
    const { hash, blocks, target, size } = content;
    // A directory's owner keeps rwx everywhere: a chmod 000 here must not lock every peer's
    // node out of its own copy (its other bits travel as they are).
    const mode = type === 'dir' ? permBits(st.mode) | 0o700 : permBits(st.mode);
    const entry: IndexEntry = {
      type,
      size,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      mode,
      hash,
      blocks,
      target,
      version: null,
      ancestors: NO_ANCESTORS,
    };
    const cur = kvFile(ctx.node, rel);
    if (
      idx !== undefined &&
      idx.type === type &&
      idx.hash === hash &&
      idx.target === target &&
      idx.mode === mode
    ) {
      // Metadata only (mtime touched, same content): nothing to publish.
      ctx.index.set(rel, { ...entry, version: idx.version, ancestors: idx.ancestors });
      return false;
    }
    if (cur !== null && cur.record.type !== 'deleted' && sameContent(entry, cur.record)) {
      // Already what the cluster has: adopt it, never publish it again in our name. A rebuilt
      // index, a copy made by hand, or an index behind the disk after a crash (the version was
      // applied here, its index entry not yet saved): publishing that with the older version as
      // `prev` made conflict copies of our own versions and undid later changes.
      ctx.index.set(rel, { ...entry, version: cur.version, ancestors: ancestorsOf(cur.record) });
      return false;
    }
    const landed = ctx.index.landedAt(rel);
    if (landed !== undefined && landed !== 'deleted' && sameContent(entry, landed)) {
      // A version applied here just before the process died, its index record not written.
      ctx.index.set(rel, { ...entry, version: landed.version, ancestors: landed.ancestors });
      return false;
    }
    if (type === 'file' && mayBeStale(ctx, cur, rel)) return this.keepAside(rel);
    const prev =
      ownLaterWrite(ctx, cur, idx) ??
      idx?.version ??
      (cur?.record.type === 'deleted' ? cur.version : null);
    const history = lineageOf(prev, cur, idx);
    const record: FileRecord = {
      type,
      size,
      mtimeMs: st.mtimeMs,
      mode,
      hash,
      blocks,
      target,
      prev,
      history,
    };
    const e = await ctx.node.put(keyOf(rel), encodeRecord(record));
    const version: Version = [e.meta.node, e.meta.seq];
    ctx.index.set(rel, { ...entry, version, ancestors: ancestorsOf(record) });
    if (content.data !== null && size > 0) ctx.transfer.keepPublished(hash, content.data);
    ctx.event('published', rel, type);
    return true;
  }

  /**
   * `rel` was just read: no longer unreadable. A directory only if it can be listed too: one
   * whose mode alone changed (chmod 000) lstats fine but hides its files, and taking it off
   * the list here made the next look at a child note it, and log it, again.
   */
  private readable(rel: string, abs: string, type: string): void {
    if (!this.ctx.unreadable.covers(rel)) return; // the common case: no listing needed
    if (type === 'dir') {
      try {
        this.ctx.disk.readdir(abs);
      } catch (e) {
        const code = isUnreadableError(e);
        if (code !== null) return this.ctx.unreadable.note(rel, code);
      }
    }
    this.ctx.unreadable.readable(rel);
  }

  /** Hold every deletion from now on (persisted: see HeldDeletions), saying so once. */
  private async hold(why: string): Promise<void> {
    if (!this.ctx.deletions.held) {
      log.error(`${why}: NOT propagating deletions (use --allow-mass-delete if this is intended)`);
      this.ctx.event('held', '', 'deletions held: root missing or emptied');
      await this.ctx.deletions.hold(why);
    } else if (!this.heldSaid) {
      log.error(
        `${why}: still NOT propagating deletions, held since an earlier start (use --allow-mass-delete if this is intended)`,
      );
    }
    this.heldSaid = true;
  }

  /**
   * Move a file that may be a local edit or an older version aside as a conflict copy (it is
   * then published under that name): nothing is lost, nothing newer undone, and the KV's
   * version is applied at the path next. See mayBeStale.
   */
  private keepAside(rel: string): boolean {
    const { ctx } = this;
    const name = keepAside(ctx, rel);
    void this.check(name).catch((e: unknown) => log.warn('check failed', { error: String(e) }));
    return false;
  }

  /** The root is gone, or holds nothing we sync while the index still lists files. */
  private async rootLooksEmptied(): Promise<boolean> {
    let names: string[];
    try {
      names = this.ctx.disk
        .readdir(this.ctx.root)
        .filter((n) => !this.ctx.ignore.ignores(n) && pathProblem(n) === null);
    } catch {
      return true;
    }
    if (names.length > 0) return false;
    let files = 0;
    for (const [, e] of this.ctx.index.entries()) if (e.type === 'file' && ++files > 1) return true;
    return false;
  }

  /**
   * A directory gone (renamed, removed, replaced by a file): so is everything under it. The
   * watcher says so once, for the directory: without this its children waited for the next
   * full rescan (a minute) while the peers kept both trees.
   */
  private async checkGoneChildren(rel: string): Promise<void> {
    const prefix = `${rel}/`;
    const todo = [...this.ctx.index.paths()].filter((p) => p.startsWith(prefix));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(SCAN_CONCURRENCY, todo.length) }, async () => {
        while (next < todo.length) await this.check(todo[next++]!);
      }),
    );
  }

  private async publishDelete(rel: string, idx: IndexEntry): Promise<boolean> {
    const cur = kvFile(this.ctx.node, rel);
    if (pastVersion(this.ctx, cur, idx) || mayBeStale(this.ctx, cur, rel)) {
      // Nothing to send: the KV's version stands, and is applied here next.
      this.ctx.index.delete(rel);
      removeDeletedParents(this.ctx, rel);
      return false;
    }
    const own = ownLaterWrite(this.ctx, cur, idx);
    const prev = own ?? idx.version;
    const history = lineageOf(prev, cur, idx);
    const gone = idx.type === 'file' ? idx.hash : '';
    const record = deletedRecord(prev, history, this.ctx.clock.now(), gone);
    await this.ctx.node.put(keyOf(rel), encodeRecord(record));
    this.ctx.index.delete(rel);
    removeDeletedParents(this.ctx, rel);
    this.ctx.event('deleted', rel, 'local');
    return true;
  }
}
