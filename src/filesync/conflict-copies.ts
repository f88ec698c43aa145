/**
 * Owns: conflict copies, the local version of a clash kept beside the winner under a name every
 * node derives the same way (`<name>.sync-conflict-<origin>-<seq>`): making one, and keeping at
 * most one per content and maxConflicts per path.
 * Must not touch: the clashing path's new version (the applier's), or any other path.
 */
import path from 'node:path';
import { kvFile, type Ctx, type LocalSide } from './context.js';
import { lstatOr } from './disk.js';
import type { IndexEntry } from './disk-index.js';
import { absPath, conflictName, conflictOrigin, isConflictCopy } from './paths.js';
import { ancestorsOf } from './record.js';

export class ConflictCopies {
  constructor(
    private readonly ctx: Ctx,
    private readonly scanner: LocalSide,
  ) {}

  /** Move the local version aside under the name every node derives the same way. */
  async keep(rel: string, local: IndexEntry): Promise<void> {
    const { ctx } = this;
    const name = conflictName(rel, local.version![0], local.version![1]);
    const abs = absPath(ctx.root, rel);
    const dest = absPath(ctx.root, name);
    // Killed after the move and before the index says so, a start would take the path's
    // absence for a local delete (kills-only seed 846): noted first, like an apply.
    ctx.index.noteLanding(rel, 'deleted');
    await ctx.index.journalled();
    ctx.parents.assert(rel); // `name` has the same parent
    // That copy exists already (made here or received), or was made and a user removed it
    // (a node that applies the winner late must not bring it back: seed 15).
    const made = kvFile(ctx.node, name);
    const thrownAway = made?.record.type === 'deleted' && made.record.hash === local.hash;
    if (thrownAway || lstatOr(ctx.disk, dest)) {
      await ctx.trash.put(abs, rel);
    } else {
      ctx.disk.rename(abs, dest);
      // The same copy made by another node (the name is the version's): indexed at once, so
      // an apply of it under way takes this file for what it is, not for a user's new file
      // to publish (seed 103, over a user's delete of that copy).
      if (made?.record.type === 'file' && made.record.hash === local.hash)
        ctx.index.set(name, {
          ...local,
          version: made.version,
          ancestors: ancestorsOf(made.record),
        });
      ctx.event('conflict', rel, `kept the local version as ${name}`);
    }
    ctx.index.delete(rel);
    void this.scanner.check(name).then(() => this.cap(rel));
  }

  /** At most maxConflicts copies per path; the oldest beyond that go to the trash. */
  async cap(rel: string): Promise<void> {
    const { ctx } = this;
    const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    let names: string[] = [];
    try {
      names = ctx.disk.readdir(dir ? absPath(ctx.root, dir) : ctx.root);
    } catch {
      // gone, or unreadable: nothing to cap now
    }
    const copies = names
      .map((n) => (dir ? `${dir}/${n}` : n))
      .filter((p) => isConflictCopy(p) && conflictOrigin(p) === rel)
      .map((p) => ({ p, seq: Number(/sync-conflict-\d+-(\d+)/.exec(p)![1]) }))
      .sort((a, b) => a.seq - b.seq);
    for (const p of this.surplus(copies.map((c) => c.p))) {
      await ctx.withPath(p, async () => {
        if (!ctx.parents.ok(p)) return;
        const moved = await ctx.trash.put(absPath(ctx.root, p), p).catch(() => null);
        if (moved) await this.scanner.checkLocked(p);
      });
    }
  }

  /**
   * Copies to remove, of one path's copies (oldest first): a copy whose content another copy
   * holds (the first by name stays, the same one on every node: two nodes can copy the same
   * content under two versions' names, say the original and its kept edit), then the oldest
   * beyond maxConflicts.
   */
  private surplus(copies: string[]): string[] {
    const kept = new Map<string, string>();
    const same = new Set<string>();
    for (const p of [...copies].sort()) {
      const hash = this.ctx.index.get(p)?.hash;
      if (hash === undefined) continue;
      if (kept.has(hash)) same.add(p);
      else kept.set(hash, p);
    }
    const rest = copies.filter((p) => !same.has(p));
    return [...same, ...rest.slice(0, Math.max(0, rest.length - this.ctx.maxConflicts))];
  }
}
