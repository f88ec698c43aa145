import { sha256 } from './hasher.js';
import { waitFor } from '../../test/helpers/tmp.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, contentOf, fileRecord, memMirror, ROOT, TMP } from '../../test/helpers/mem-mirror.js';
import { Applier, type LocalSide } from './applier.js';
import { kvFile } from './context.js';
import { keyOf } from './paths.js';
import { deletedRecord, type FileRecord, type Version } from './record.js';

/**
 * The applier's rules on the in-memory disk: what a remote version does to the local one
 * (replaced, kept as a conflict copy, kept over a delete that did not see it), type changes,
 * symlinked parents, and injected failures that must leave disk and index agreeing.
 */
let m: Awaited<ReturnType<typeof memMirror>>;
let applier: Applier;
/** Paths handed to the local side to scan. */
let handed: string[];

beforeEach(async () => {
  m = await memMirror();
  handed = [];
  const local: LocalSide = {
    checkLocked: () => Promise.resolve(false),
    check: (rel) => (handed.push(rel), Promise.resolve()),
  };
  applier = new Applier(m.ctx, local);
});
afterEach(() => m.close());

/** A file here at `version`, as the scanner would have indexed it. */
function localFile(rel: string, content: string, version: Version): void {
  m.disk.writeFile(at(rel), content, 0o640);
  m.indexed(rel, content, version);
}
const text = (rel: string): string => m.disk.readFile(at(rel)).toString();
const dir = (prev: Version | null): FileRecord => ({
  ...fileRecord(''),
  type: 'dir',
  size: 0,
  hash: '',
  mode: 0o750,
  prev,
});

describe('a remote file version', () => {
  it("written while it was fetched is the user's: published first, never set aside", async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', fileRecord('theirs', [1, 4]), [2, 9]);
    let checks = 0;
    const scanner: LocalSide = {
      // The first look finds nothing new; the next finds the user's write and publishes it.
      checkLocked: async () => {
        if (++checks === 1) return false;
        await m.arrives('a.txt', fileRecord('typed during the fetch', [1, 4]), [1, 5]);
        m.indexed('a.txt', 'typed during the fetch', [1, 5]);
        return true;
      },
      check: () => Promise.resolve(),
    };
    const fetch = m.ctx.transfer.fetch.bind(m.ctx.transfer);
    m.ctx.transfer.fetch = async (...args) => {
      if (checks === 1) m.disk.writeFile(at('a.txt'), 'typed during the fetch', 0o640);
      return fetch(...args);
    };
    await new Applier(m.ctx, scanner).apply('a.txt');
    expect(text('a.txt')).toBe('typed during the fetch');
    expect(m.trashed()).toEqual([]);
    expect(checks).toBe(2);
  });

  it('is written with its mode and mtime, parents made, and indexed at its version', async () => {
    await m.arrives('docs/a.txt', fileRecord('x'), [2, 9]);
    await applier.apply('docs/a.txt');
    expect(text('docs/a.txt')).toBe(contentOf(keyOf('docs/a.txt'), [2, 9]));
    const st = m.disk.lstat(at('docs/a.txt'));
    expect([st.mode, st.mtimeMs]).toEqual([0o640, 5000]);
    expect(m.ctx.index.get('docs/a.txt')?.version).toEqual([2, 9]);
    expect(m.events).toEqual(['applied docs/a.txt file']);
  });

  it('that saw the local version replaces it; the old content goes to the trash', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', fileRecord('theirs', [1, 4]), [2, 9]);
    await applier.apply('a.txt');
    expect(text('a.txt')).toBe(contentOf(keyOf('a.txt'), [2, 9]));
    expect(m.trashed()).toEqual(['mine']);
    expect(m.disk.paths(ROOT).filter((p) => p.includes('conflict'))).toEqual([]);
  });

  it('made concurrently keeps the local version as the conflict copy named after it', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', fileRecord('theirs'), [2, 9]);
    await applier.apply('a.txt');
    expect(text('a.txt')).toBe(contentOf(keyOf('a.txt'), [2, 9]));
    expect(text('a.sync-conflict-1-4.txt')).toBe('mine');
    expect(m.events).toContain('conflict a.txt kept the local version as a.sync-conflict-1-4.txt');
    expect(handed).toEqual(['a.sync-conflict-1-4.txt']); // the copy is scanned and published
    expect(m.trashed()).toEqual([]);
  });

  it('of a conflict copy whose content another copy holds leaves one of the two', async () => {
    // Two nodes copied the same content under two versions' names (a version and its kept
    // edit): the mirror simulator found both kept (seed 121 with power cuts).
    const body = contentOf(keyOf('a.sync-conflict-2-99.txt'), [3, 1]);
    localFile('a.sync-conflict-2-27.txt', body, [3, 5]);
    await m.arrives('a.sync-conflict-2-99.txt', fileRecord(body), [3, 1]);
    await applier.apply('a.sync-conflict-2-99.txt');
    await new Promise((r) => setImmediate(r)); // the copies are capped after the apply
    expect(m.disk.paths(ROOT).filter((p) => p.includes('conflict'))).toEqual([
      at('a.sync-conflict-2-27.txt'), // the first by name, on every node
    ]);
    expect(m.trashed()).toEqual([body]);
  });

  it('made concurrently with the same content makes no copy: metadata only', async () => {
    localFile('a.txt', 'same', [1, 4]);
    await m.arrives('a.txt', { ...fileRecord('same'), mode: 0o600 }, [2, 9]);
    await applier.apply('a.txt');
    expect(m.fetched).toEqual([]);
    expect(text('a.txt')).toBe('same');
    expect(m.disk.lstat(at('a.txt')).mode).toBe(0o600);
    expect(m.ctx.index.get('a.txt')?.version).toEqual([2, 9]);
    expect(handed).toEqual([]);
  });
});

describe('conflict copies', () => {
  // The copy of 1/4, as another node made it (same name, same content).
  const copy = 'a.sync-conflict-1-4.txt';

  it('a copy a user removed is not made again by a node that learns of the clash late', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives(copy, fileRecord('mine'), [3, 2]);
    await m.arrives(copy, deletedRecord([3, 2], [], 0, sha256(Buffer.from('mine'))), [3, 5]);
    await m.arrives('a.txt', fileRecord('theirs'), [2, 9]);
    await applier.apply('a.txt');
    expect(m.disk.lstatIfAny(at(copy))).toBeNull(); // seed 15
    expect(m.trashed()).toEqual(['mine']);
    expect(text('a.txt')).toBe(contentOf(keyOf('a.txt'), [2, 9]));
  });

  it('the copy another node made is indexed at its version at once', async () => {
    // So an apply of that copy under way takes the file for what it is (seed 103).
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives(copy, fileRecord('mine'), [3, 2]);
    await m.arrives('a.txt', fileRecord('theirs'), [2, 9]);
    await applier.apply('a.txt');
    expect(text(copy)).toBe('mine');
    expect(m.ctx.index.get(copy)?.version).toEqual([3, 2]);
  });
});

describe('a directory a peer deleted', () => {
  it('is published again when a path it did not see arrives under it', async () => {
    await m.arrives('d', { ...dir(null), type: 'deleted', hash: '' }, [2, 5]);
    await m.arrives('d/new.txt', fileRecord('new'), [3, 1]);
    await applier.apply('d/new.txt');
    await waitFor(() => kvFile(m.node, 'd')!.record.type === 'dir', 'd published again');
    const d = kvFile(m.node, 'd')!;
    expect(d.record.prev).toEqual([2, 5]); // it saw the delete: it wins everywhere
    expect(m.ctx.index.get('d')?.version).toEqual(d.version);
    expect(m.events).toContain('kept-edit d a directory delete that did not see what it holds');
  });

  it('a live one is left as it is', async () => {
    await m.arrives('d', dir(null), [2, 5]);
    await m.arrives('d/new.txt', fileRecord('new'), [3, 1]);
    await applier.apply('d/new.txt');
    expect(kvFile(m.node, 'd')!.version).toEqual([2, 5]);
  });
});

describe('a remote delete', () => {
  it('that did not see the local edit keeps the file and publishes it again over the delete', async () => {
    const me = m.node.id;
    localFile('a.txt', 'mine', [me, 4]);
    await m.arrives('a.txt', deletedRecord(null, [], 0), [2, 9]);
    await applier.apply('a.txt');
    expect(text('a.txt')).toBe('mine');
    const now = kvFile(m.node, 'a.txt')!;
    expect(now.record.type).toBe('file');
    expect(now.record.prev).toEqual([2, 9]); // it saw the delete: it wins everywhere
    // It continues the kept version: its holders replace it, and no one takes it for lost.
    expect(now.record.history[0]).toEqual([me, 4]);
    expect(m.ctx.index.get('a.txt')?.version).toEqual(now.version);
    expect(m.events).toEqual(['kept-edit a.txt a delete that did not see this edit']);
  });

  it("that did not see a peer's version here keeps it too: its author may have lost it", async () => {
    // Only the author publishing it again lost an edit when the author's disk lost it in a
    // power cut before writeback (the mirror simulator, seed 163).
    localFile('a.txt', 'theirs', [m.node.id + 1, 4]);
    await m.arrives('a.txt', deletedRecord(null, [], 0), [2, 9]);
    await applier.apply('a.txt');
    expect(text('a.txt')).toBe('theirs');
    expect(kvFile(m.node, 'a.txt')!.record.history[0]).toEqual([m.node.id + 1, 4]);
  });

  it('of the same content under a sibling version (a kept edit) is applied, not kept', async () => {
    // Every holder re-publishes a kept edit; a delete built on one of them names no other.
    localFile('a.txt', 'kept', [3, 22]);
    const saw = sha256(Buffer.from('kept'));
    await m.arrives('a.txt', deletedRecord([2, 27], [[4, 5]], 0, saw), [2, 30]);
    await applier.apply('a.txt');
    expect(m.disk.lstatIfAny(at('a.txt'))).toBeNull();
    expect(m.trashed()).toEqual(['kept']);
    expect(m.events).toEqual(['deleted a.txt remote']);
  });

  it('that saw the local version moves the file to the trash and forgets it', async () => {
    m.disk.mkdir(at('d'));
    localFile('d/a.txt', 'mine', [1, 4]);
    await m.arrives('d/a.txt', deletedRecord([1, 4], [], 0), [2, 9]);
    await applier.apply('d/a.txt');
    expect(m.disk.paths(at('d'))).toEqual([at('d')]);
    expect(m.trashed()).toEqual(['mine']);
    expect(m.ctx.index.get('d/a.txt')).toBeUndefined();
    expect(m.events).toEqual(['deleted d/a.txt remote']);
  });

  it('whose move to the trash fails leaves the file and its index entry, and fails', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', deletedRecord([1, 4], [], 0), [2, 9]);
    m.disk.fail('rename', at('a.txt'), 'EACCES', 2);
    await expect(applier.apply('a.txt')).rejects.toThrow('EACCES');
    expect(text('a.txt')).toBe('mine');
    expect(m.ctx.index.get('a.txt')?.version).toEqual([1, 4]); // or a scan would publish it anew
    await applier.apply('a.txt'); // the retry
    expect(m.ctx.index.get('a.txt')).toBeUndefined();
  });
});

describe('a landing note the journal could not write', () => {
  // Killed after the disk changed, a start without the note would publish the change as ours.
  const journalFails = (): void => {
    m.ctx.index.journalled = () => Promise.reject(new Error('ENOSPC'));
  };

  it('stops a version before it moves in', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', fileRecord('theirs', [1, 4]), [2, 9]);
    journalFails();
    await expect(applier.apply('a.txt')).rejects.toThrow('ENOSPC');
    expect([text('a.txt'), m.trashed()]).toEqual(['mine', []]);
  });

  it('stops a delete and a conflict copy before the file moves', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    localFile('b.txt', 'mine too', [1, 5]);
    await m.arrives('a.txt', deletedRecord([1, 4], [], 0), [2, 9]);
    await m.arrives('b.txt', fileRecord('theirs', [1, 1]), [2, 10]);
    journalFails();
    await expect(applier.apply('a.txt')).rejects.toThrow('ENOSPC');
    await expect(applier.apply('b.txt')).rejects.toThrow('ENOSPC');
    const copies = m.disk.paths(ROOT).filter((p) => p.includes('sync-conflict'));
    expect([text('a.txt'), text('b.txt'), copies, m.trashed()]).toEqual([
      'mine',
      'mine too',
      [],
      [],
    ]);
  });
});

describe('a change of type', () => {
  it('a directory or a symlink that saw a file replaces it; the file goes to the trash', async () => {
    localFile('x', 'was a file', [1, 4]);
    localFile('y', 'also a file', [1, 5]);
    await m.arrives('x', dir([1, 4]), [2, 9]);
    await m.arrives('y', { ...dir([1, 5]), type: 'symlink', target: 'x', mode: 0o777 }, [2, 10]);
    await applier.apply('x');
    await applier.apply('y');
    expect(m.disk.lstat(at('x')).isDirectory()).toBe(true);
    expect(m.disk.lstat(at('x')).mode).toBe(0o750);
    expect(m.disk.readlink(at('y'))).toBe('x');
    expect(m.trashed().sort()).toEqual(['also a file', 'was a file']);
    expect(m.ctx.index.get('x')?.type).toBe('dir');
    expect(m.ctx.index.get('y')?.type).toBe('symlink');
  });

  it('a file that saw an empty directory replaces it', async () => {
    m.disk.mkdir(at('e'));
    m.ctx.index.set('e', { ...m.ctx.index.get('e')!, ...dirEntry([1, 4]) });
    await m.arrives('e', fileRecord('now a file', [1, 4]), [2, 9]);
    await applier.apply('e');
    expect(text('e')).toBe(contentOf(keyOf('e'), [2, 9]));
  });
});

describe('what is never done', () => {
  it('writing through a parent that is a symlink', async () => {
    m.disk.mkdir('/etc');
    m.disk.symlink('/etc', at('link'));
    await m.arrives('link/passwd', fileRecord('root::0:0'), [2, 9]);
    await applier.apply('link/passwd');
    expect(m.fetched).toEqual([]);
    expect(m.disk.paths('/etc')).toEqual(['/etc']);
    expect(m.events).toEqual(['error link/passwd parent is a symlink']);
  });

  it('leaving an indexed path off the disk when the rename into place fails', async () => {
    // Were the index to keep the old version while the disk has nothing at the path, the
    // scan before the retry would publish a delete of a file nobody deleted.
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', fileRecord('theirs', [1, 4]), [2, 9]);
    m.disk.fail('rename', `${TMP}/`, 'ENOSPC');
    await expect(applier.apply('a.txt')).rejects.toThrow('ENOSPC');
    const there = m.disk.paths(at('a.txt')).length > 0;
    expect(there || m.ctx.index.get('a.txt') === undefined).toBe(true);
    await applier.apply('a.txt'); // the retry
    expect(text('a.txt')).toBe(contentOf(keyOf('a.txt'), [2, 9]));
    expect(m.ctx.index.get('a.txt')?.version).toEqual([2, 9]);
  });
});

function dirEntry(version: Version) {
  return {
    type: 'dir' as const,
    size: 0,
    mtimeMs: 0,
    ino: 0,
    mode: 0o755,
    hash: '',
    blocks: [],
    target: null,
    version,
  };
}

describe('before an apply moves anything, the index journal notes it (a kill between is safe)', () => {
  /** Notes and renames touching `rel`, in order. */
  function record(rel: string): string[] {
    const log: string[] = [];
    const note = m.ctx.index.noteLanding.bind(m.ctx.index);
    m.ctx.index.noteLanding = (p, e) => {
      if (p === rel) log.push(e === 'deleted' ? 'note removal' : `note ${e.version!.join('/')}`);
      note(p, e);
    };
    const rename = m.disk.rename.bind(m.disk);
    m.disk.rename = (from, to) => {
      if (from === at(rel)) log.push('move away');
      if (to === at(rel)) log.push('move in');
      rename(from, to);
    };
    return log;
  }

  it('a concurrent version: the conflict copy, then the new version', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', fileRecord('theirs'), [2, 9]);
    const log = record('a.txt');
    await applier.apply('a.txt');
    expect(log).toEqual(['note removal', 'move away', 'note 2/9', 'move in']);
  });

  it('a delete', async () => {
    localFile('a.txt', 'mine', [1, 4]);
    await m.arrives('a.txt', deletedRecord([1, 4], [], 0), [2, 9]);
    const log = record('a.txt');
    await applier.apply('a.txt');
    expect(log).toEqual(['note removal', 'move away']);
  });
});
