import type { Ctx, KvFile } from './context.js';
import type { IndexEntry } from './disk-index.js';
import { lstatOr } from './disk.js';
import { absPath, conflictName } from './paths.js';
import { descendsFrom, lineage, sameVersion, type Version } from './record.js';

/**
 * The scanner's rules for an index behind the disk: after kill -9 (a journal record not yet
 * written) or a power loss (the journal's tail lost), the index may name an older version than
 * the one on disk, or a file an applied delete removed. What the disk differs by is then not
 * a local change, and publishing it would make spurious versions with a stale `prev`.
 */

/**
 * The KV's current version when it is a write of ours made on top of what the index holds:
 * the index missed it (the process died between the put and the index), and a change or
 * delete made now builds on it. Using the index's older version as `prev` made peers take
 * our own change for a concurrent one (conflict copies of our own versions, deletes undone).
 */
export function ownLaterWrite(
  ctx: Ctx,
  cur: KvFile | null,
  idx: IndexEntry | undefined,
): Version | null {
  if (cur === null || cur.entry.meta.node !== ctx.node.id) return null;
  if (idx === undefined || sameVersion(cur.version, idx.version)) return null;
  if (idx.version !== null && !descendsFrom(cur.record, idx.version)) return null;
  return cur.version;
}

/**
 * Has the cluster moved past the version the index holds for a path gone from disk, so that
 * a delete of it from us would change nothing? A delete that saw it is the cluster's already
 * (a peer's delete applied, the entry not yet dropped). A peer's newer file or link made on
 * top of it wins over our delete anyway, by the kept-edit rule, and is applied here next.
 * Sending the delete in our name made a spurious version, and every holder of the newer one
 * published it again. Our own later write is deleted as usual, and so is a directory.
 */
export function pastVersion(ctx: Ctx, cur: KvFile | null, idx: IndexEntry): boolean {
  if (cur === null || idx.version === null || !sawVersion(cur, idx.version)) return false;
  if (cur.record.type === 'deleted') return true;
  return (
    idx.type !== 'dir' &&
    !sameVersion(cur.version, idx.version) &&
    ownLaterWrite(ctx, cur, idx) === null
  );
}

/**
 * After a power loss (ctx.indexMayLag, until the start scan is done) what the disk differs
 * from the index by, on a path the KV holds, may be a local edit, a version applied here since
 * (its journal record lost), or the disk's own loss (a write not yet written back, undone).
 * Published, the last two would undo versions the cluster holds: the disk's state is kept
 * aside instead and the KV's version applied. A path the KV never held is published as usual.
 */
export function mayBeStale(ctx: Ctx, cur: KvFile | null, rel: string): boolean {
  return (ctx.indexMayLag || stillLagging(ctx, rel)) && cur !== null;
}

/** Was `rel` ignored by a power-loss start scan, and not looked at since? */
export function stillLagging(ctx: Ctx, rel: string): boolean {
  return ctx.lagging !== null && !ctx.lagging.seen.has(rel) && ctx.lagging.ignored(rel);
}

/**
 * Rename `rel` to a conflict copy named after this node and the time (it may be a local edit:
 * kept, published under that name) and forget the path, so the KV's version is applied there.
 * Returns the copy's path.
 */
export function keepAside(ctx: Ctx, rel: string): string {
  ctx.parents.assert(rel); // the copy has the same parent
  const free = (n: number): string => conflictName(rel, ctx.node.id, ctx.clock.now() + n);
  let n = 0;
  while (lstatOr(ctx.disk, absPath(ctx.root, free(n))) !== null) n++;
  ctx.disk.rename(absPath(ctx.root, rel), absPath(ctx.root, free(n)));
  ctx.index.delete(rel);
  ctx.event('conflict', rel, `kept as ${free(n)}: the machine went down, it may be a local edit`);
  return free(n);
}

/** Is `v` the KV's version, or one it was made on top of? */
function sawVersion(cur: KvFile, v: Version): boolean {
  return sameVersion(cur.version, v) || descendsFrom(cur.record, v);
}

/**
 * The lineage of a version published on top of `prev`: the KV's record of `prev` when it is
 * current, else what the index kept of `prev`'s (a concurrent version may be current, applied
 * or not; an empty history there made a peer holding an older ancestor keep content a later
 * delete of ours saw, kills-only seed 327).
 */
export function lineageOf(
  prev: Version | null,
  cur: KvFile | null,
  idx: IndexEntry | undefined,
): Version[] {
  if (prev === null) return [];
  if (cur !== null && sameVersion(cur.version, prev)) return lineage(prev, cur.record);
  if (idx !== undefined && sameVersion(idx.version, prev)) return idx.ancestors;
  return [];
}
