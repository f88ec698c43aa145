import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, fileRecord, memMirror, ROOT } from '../../test/helpers/mem-mirror.js';
import { kvFile } from './context.js';
import { sha256 } from './hasher.js';
import { keyOf } from './paths.js';
import { deletedRecord, encodeRecord, type Version } from './record.js';
import { Scanner } from './scanner.js';
import { DiskIndex, type IndexEntry, type Landing } from './disk-index.js';

/**
 * The scanner's rules on the in-memory disk: what cannot be read is unknown, never deleted; an
 * emptied root holds deletions; and an index left behind the disk by a crash (kill -9 between
 * an apply or a publish and the index) never turns the cluster's versions into new ones.
 */
let m: Awaited<ReturnType<typeof memMirror>>;
let scanner: Scanner;

beforeEach(async () => {
  m = await memMirror();
  scanner = new Scanner(m.ctx, () => Promise.resolve());
});
afterEach(() => m.close());

/** Index `rel` as holding `content` at `version`, older than the disk: the scanner must look. */
const indexed = (rel: string, content: string, version: Version): void =>
  m.indexed(rel, content, version, m.disk.lstat(at(rel)).mtimeMs - 1);

describe('what cannot be read', () => {
  it('a directory it may not list: its files are unknown, not deleted', async () => {
    m.disk.mkdir(at('d'));
    m.disk.writeFile(at('d/a.txt'), 'a', 0o640);
    indexed('d/a.txt', 'a', [1, 1]);
    m.disk.fail('readdirTyped', at('d'), 'EACCES');
    m.disk.fail('readdir', at('d'), 'EACCES');
    m.disk.fail('lstat', at('d/a.txt'), 'EACCES');
    await scanner.scan();
    expect(kvFile(m.node, 'd/a.txt')).toBeNull();
    expect(m.ctx.index.get('d/a.txt')?.version).toEqual([1, 1]);
    expect(m.ctx.unreadable.covers('d/a.txt')).toBe(true);
  });

  it('a file it may not read: unknown, neither changed nor deleted', async () => {
    m.disk.writeFile(at('a.txt'), 'changed', 0o640);
    indexed('a.txt', 'before', [1, 1]);
    m.disk.fail('hashFile', at('a.txt'), 'EACCES');
    expect(await scanner.check('a.txt')).toBe(false);
    expect(kvFile(m.node, 'a.txt')).toBeNull();
    expect(m.ctx.unreadable.covers('a.txt')).toBe(true);
    expect(await scanner.check('a.txt')).toBe(true); // readable again: published
  });

  it('a directory whose mode changed but that cannot be listed stays unreadable', async () => {
    m.disk.mkdir(at('d'));
    m.disk.writeFile(at('d/a.txt'), 'a', 0o640);
    indexed('d/a.txt', 'a', [1, 1]);
    m.disk.fail('readdirTyped', at('d'), 'EACCES');
    m.disk.fail('readdir', at('d'), 'EACCES', 2); // the scan's look at `d`, and the next
    await scanner.scan();
    expect(m.ctx.unreadable.covers('d/a.txt')).toBe(true);
    m.disk.chmod(at('d'), 0o000); // what made it unreadable, seen by the watcher
    await scanner.check('d');
    expect(m.ctx.unreadable.covers('d/a.txt')).toBe(true); // still: its files are unknown
    await scanner.check('d'); // listable again: readable
    expect(m.ctx.unreadable.covers('d/a.txt')).toBe(false);
  });

  it('the only file removed is no mass delete, whether a scan or a check sees it first', async () => {
    m.disk.writeFile(at('a'), 'a', 0o640);
    indexed('a', 'a', [1, 1]);
    m.disk.remove(at('a'));
    await scanner.scan();
    expect(m.ctx.deletions.held).toBe(false);
    expect(kvFile(m.node, 'a')!.record.type).toBe('deleted');
  });

  it('a root emptied while the index held files holds deletions instead of sending them', async () => {
    for (const n of ['a', 'b', 'c']) {
      m.disk.writeFile(at(n), n, 0o640);
      indexed(n, n, [1, 1]);
      m.disk.remove(at(n));
    }
    await scanner.scan();
    expect(m.ctx.deletions.held).toBe(true);
    for (const n of ['a', 'b', 'c']) expect(kvFile(m.node, n)).toBeNull();
  });
});

describe('an index behind the disk after a crash', () => {
  it('adopts the version the disk already holds instead of publishing it as new', async () => {
    // A peer's version was applied to disk; the process died before its index entry was saved.
    m.disk.writeFile(at('a.txt'), 'theirs', 0o640);
    indexed('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', fileRecord('theirs', [1, 4]), [2, 9]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([2, 9]); // nothing published
    expect(m.ctx.index.get('a.txt')?.version).toEqual([2, 9]);
  });

  it('adopts a delete the disk already reflects instead of publishing it again', async () => {
    // A peer's delete was applied here (the file went to the trash); the process died before
    // the index dropped its entry. Found by the mirror simulator (seed 8): the restart sent
    // the delete again in this node's name, with the older version as `prev`.
    m.disk.writeFile(at('keep.txt'), 'k', 0o640);
    indexed('keep.txt', 'k', [1, 3]);
    m.disk.writeFile(at('a.txt'), 'mine', 0o640);
    indexed('a.txt', 'mine', [1, 4]);
    m.disk.remove(at('a.txt'));
    await m.arrives('a.txt', deletedRecord([1, 4], [], 5000), [2, 9]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([2, 9]); // nothing published
    expect(m.ctx.index.get('a.txt')).toBeUndefined();
  });

  it('sends no delete of a version a peer has already built on', async () => {
    // A peer's delete was applied, the index kept the older entry (a crash), and the path was
    // written again since (seed 41): the newer version is applied next; a delete from us
    // would only make every holder of it publish it again.
    m.disk.writeFile(at('keep.txt'), 'k', 0o640);
    indexed('keep.txt', 'k', [1, 3]);
    m.disk.writeFile(at('a.txt'), 'mine', 0o640);
    indexed('a.txt', 'mine', [1, 4]);
    m.disk.remove(at('a.txt'));
    await m.arrives('a.txt', { ...fileRecord('again', [2, 9]), history: [[1, 4]] }, [3, 2]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([3, 2]);
    expect(m.ctx.index.get('a.txt')).toBeUndefined();
  });

  it('builds a change on our own write the index missed, not on the older version', async () => {
    m.disk.writeFile(at('a.txt'), 'second edit', 0o640);
    indexed('a.txt', 'first', [2, 9]);
    // We published an edit on top of 2/9 and died before the index recorded it.
    const ours = await m.node.put(keyOf('a.txt'), encodeRecord(fileRecord('edit', [2, 9])));
    expect(await scanner.check('a.txt')).toBe(true);
    const now = kvFile(m.node, 'a.txt')!;
    expect(now.record.hash).toBe(sha256(Buffer.from('second edit')));
    expect(now.record.prev).toEqual([ours.meta.node, ours.meta.seq]);
  });

  it('builds a delete on our own write the index missed', async () => {
    m.disk.writeFile(at('a.txt'), 'x', 0o640);
    indexed('a.txt', 'first', [2, 9]);
    const ours = await m.node.put(keyOf('a.txt'), encodeRecord(fileRecord('edit', [2, 9])));
    m.disk.remove(at('a.txt'));
    expect(await scanner.check('a.txt')).toBe(true);
    const now = kvFile(m.node, 'a.txt')!;
    expect(now.record.type).toBe('deleted');
    expect(now.record.prev).toEqual([ours.meta.node, ours.meta.seq]);
  });
});

describe('after a kill during an apply (its index record not written)', () => {
  /** The index as the next start loads it, the journal saying `landing` was under way. */
  async function restartedWith(rel: string, landing: Landing): Promise<void> {
    const before = await DiskIndex.load(m.dir);
    for (const [p, e] of m.ctx.index.entries()) before.set(p, e);
    before.noteLanding(rel, landing);
    await before.journalled();
    m.ctx.index = await DiskIndex.load(m.dir);
  }

  it('the version it put there is adopted, not published as a local edit', async () => {
    // Applied 4/20, killed before the index said so; a concurrent 1/17 has arrived since.
    m.disk.writeFile(at('a.txt'), 'from 4', 0o640);
    const st = m.disk.lstat(at('a.txt'));
    const applied = fileRecord('from 4');
    await restartedWith('a.txt', {
      ...applied,
      type: 'file',
      ino: st.ino,
      mtimeMs: st.mtimeMs,
      version: [4, 20],
      ancestors: [],
    });
    await m.arrives('a.txt', fileRecord('from 1'), [1, 17]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([1, 17]); // nothing published
    expect(m.ctx.index.get('a.txt')?.version).toEqual([4, 20]); // so 1/17 replaces it next
  });

  it('a path an apply was replacing (moved aside, its version not in yet) sends no delete', async () => {
    m.disk.writeFile(at('keep.txt'), 'k', 0o640); // not an emptied root (deletes held)
    indexed('keep.txt', 'k', [1, 3]);
    m.disk.writeFile(at('a.txt'), 'x', 0o640);
    indexed('a.txt', 'x', [4, 20]);
    const st = m.disk.lstat(at('a.txt'));
    m.disk.remove(at('a.txt')); // set aside for the new version, then killed
    const next = fileRecord('from 1');
    await restartedWith('a.txt', {
      ...next,
      type: 'file',
      ino: st.ino,
      version: [1, 17],
      ancestors: [],
    });
    await m.arrives('a.txt', fileRecord('from 1'), [1, 17]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([1, 17]); // no delete of ours
    expect(m.ctx.index.get('a.txt')).toBeUndefined(); // 1/17 is applied next
  });

  it('a path an applied delete removed sends no delete of its own', async () => {
    m.disk.writeFile(at('keep.txt'), 'k', 0o640); // not an emptied root (deletes held)
    indexed('keep.txt', 'k', [1, 3]);
    m.disk.writeFile(at('a.txt'), 'x', 0o640);
    indexed('a.txt', 'x', [4, 20]);
    m.disk.remove(at('a.txt'));
    await restartedWith('a.txt', 'deleted');
    await m.arrives('a.txt', fileRecord('from 1'), [1, 17]); // concurrent with the delete
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([1, 17]);
    expect(m.ctx.index.get('a.txt')).toBeUndefined(); // 1/17 is applied next
  });
});

describe('the lineage of what it publishes', () => {
  // The index holds 4/20 (built on 2/5); a concurrent 1/17 is the KV's current record, not
  // yet applied here. A local change is built on 4/20 and must name 2/5 too, or a peer still
  // at 2/5 takes it for a concurrent write (kills-only seed 327).
  const at420 = async (content: string): Promise<void> => {
    indexed('a.txt', content, [4, 20]);
    m.ctx.index.set('a.txt', { ...m.ctx.index.get('a.txt')!, ancestors: [[2, 5]] });
    await m.arrives('a.txt', fileRecord('from 1'), [1, 17]);
  };

  it("an edit carries the indexed version's ancestors, not the current record's", async () => {
    m.disk.writeFile(at('a.txt'), 'edited', 0o640);
    await at420('before');
    expect(await scanner.check('a.txt')).toBe(true);
    const { record } = kvFile(m.node, 'a.txt')!;
    expect([record.prev, record.history]).toEqual([[4, 20], [[2, 5]]]);
    expect(m.ctx.index.get('a.txt')!.ancestors).toEqual([
      [4, 20],
      [2, 5],
    ]);
  });

  it("a delete carries the indexed version's ancestors", async () => {
    m.disk.writeFile(at('keep.txt'), 'k', 0o640); // not an emptied root (deletes held)
    indexed('keep.txt', 'k', [1, 3]);
    m.disk.writeFile(at('a.txt'), 'gone', 0o640);
    await at420('gone');
    m.disk.remove(at('a.txt'));
    await scanner.scan();
    const { record } = kvFile(m.node, 'a.txt')!;
    expect(record.type).toBe('deleted');
    expect([record.prev, record.history]).toEqual([[4, 20], [[2, 5]]]);
  });
});

describe('a path the power-loss start scan skipped (ignored then)', () => {
  it('is judged as that scan would have when the rules let it in, once', async () => {
    // The disk may hold what the power cut brought back: not published as our edit (seed 278).
    m.ctx.lagging = { ignored: (rel) => rel === 'a.txt', seen: new Set() };
    m.disk.writeFile(at('a.txt'), 'brought back', 0o640);
    indexed('a.txt', 'what the user wrote', [1, 4]);
    await m.arrives('a.txt', fileRecord('newer', [1, 4]), [2, 9]);
    expect(await scanner.check('a.txt')).toBe(false);
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([2, 9]);
    const copies = m.disk.paths(ROOT).filter((p) => p.includes('sync-conflict'));
    expect(copies.map((p) => m.disk.readFile(p).toString())).toEqual(['brought back']);
    expect(m.ctx.lagging.seen.has('a.txt')).toBe(true); // a later edit is an edit
  });
});

describe('a directory whose delete waits for what it holds', () => {
  it("goes once the user's own delete of its last file is published", async () => {
    // A peer deleted d while d/a.txt was here; the user deletes it too (seed 623).
    m.disk.writeFile(at('keep.txt'), 'k', 0o640); // not an emptied root (deletes held)
    indexed('keep.txt', 'k', [1, 3]);
    m.disk.mkdir(at('d'));
    m.ctx.index.set('d', { ...dirEntry(m.disk.lstat(at('d'))), version: [1, 2] });
    m.disk.writeFile(at('d/a.txt'), 'a', 0o640);
    indexed('d/a.txt', 'a', [1, 4]);
    await m.arrives('d', deletedRecord([1, 2], [], 0), [2, 9]);
    m.disk.remove(at('d/a.txt'));
    await scanner.scan();
    expect(kvFile(m.node, 'd/a.txt')!.record.type).toBe('deleted');
    expect(m.disk.lstatIfAny(at('d'))).toBeNull();
    expect(m.ctx.index.get('d')).toBeUndefined();
  });
});

describe('after a power loss (the index may be behind the disk)', () => {
  beforeEach(() => {
    m.ctx.indexMayLag = true;
    m.disk.writeFile(at('keep.txt'), 'k', 0o640);
    indexed('keep.txt', 'k', [1, 3]);
  });

  it('a file that differs from a version the KV has moved past is kept aside, not published', async () => {
    // On disk: a version applied since (its journal record lost), or a local edit: unknown.
    m.disk.writeFile(at('a.txt'), 'applied or edited', 0o640);
    indexed('a.txt', 'old', [1, 4]);
    await m.arrives('a.txt', fileRecord('newer', [3, 3]), [2, 9]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([2, 9]); // not undone
    expect(m.ctx.index.get('a.txt')).toBeUndefined(); // so the KV's version is applied
    const copies = m.disk.paths(ROOT).filter((p) => p.includes('sync-conflict'));
    expect(copies.map((p) => m.disk.readFile(p).toString())).toEqual(['applied or edited']);
  });

  it('a file gone whose path the KV has moved past sends no delete', async () => {
    m.disk.writeFile(at('a.txt'), 'old', 0o640);
    indexed('a.txt', 'old', [1, 4]);
    m.disk.remove(at('a.txt'));
    await m.arrives('a.txt', fileRecord('newer', [3, 3]), [2, 9]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([2, 9]);
    expect(m.ctx.index.get('a.txt')).toBeUndefined();
  });

  it('even an edit of the version the KV holds is kept aside: the disk may have lost a write', async () => {
    // Our edit of a.txt was published, then the power went before the disk wrote it back:
    // the older content is on disk again. Published, it would undo the edit everywhere.
    m.disk.writeFile(at('a.txt'), 'older', 0o640);
    indexed('a.txt', 'edit', [1, 4]);
    await m.arrives('a.txt', fileRecord('edit'), [1, 4]);
    await scanner.scan();
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([1, 4]);
    expect(m.ctx.index.get('a.txt')).toBeUndefined(); // the KV's version is applied next
  });

  it("an emptied root is the disk's loss: no deletions held, the KV's versions applied again", async () => {
    // Files applied into directories the power cut took (seed 779): held, the node never got
    // them back, and held every later delete too.
    for (const f of ['a.txt', 'b.txt']) {
      m.disk.writeFile(at(f), f, 0o640);
      indexed(f, f, [1, 4]);
      await m.arrives(f, fileRecord(f), [1, 4]);
    }
    m.disk.remove(at('keep.txt'));
    m.ctx.index.delete('keep.txt');
    for (const f of ['a.txt', 'b.txt']) m.disk.remove(at(f));
    await scanner.scan();
    expect(m.ctx.deletions.held).toBe(false);
    expect(m.ctx.index.size).toBe(0); // so the engine applies both again
    expect(kvFile(m.node, 'a.txt')!.version).toEqual([1, 4]);
  });

  it('a new path the KV never held is published as usual', async () => {
    m.disk.writeFile(at('new.txt'), 'fresh', 0o640);
    expect(await scanner.check('new.txt')).toBe(true);
  });
});

/** The index entry of a directory as the scanner makes it. */
function dirEntry(st: { mtimeMs: number; ino: number }): IndexEntry {
  const { mtimeMs, ino } = st;
  const none = { hash: '', blocks: [], target: null, ancestors: [] };
  return { type: 'dir', size: 0, mtimeMs, ino, mode: 0o755, version: null, ...none };
}
