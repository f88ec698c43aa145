import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { at, contentOf, fileRecord, memMirror, ROOT } from '../../test/helpers/mem-mirror.js';
import { kvFile, type Ctx } from './context.js';
import { sha256 } from './hasher.js';
import type { MemDisk } from './mem-disk.js';
import { keyOf } from './paths.js';
import type { FileRecord } from './record.js';
import { fileParents, TypeClash } from './type-clash.js';

/**
 * The type-clash rules on the in-memory disk: a directory with live contents wins over a file
 * at its path, the file's content survives as its conflict copy (named after its version), and
 * an injected failure at any step loses nothing.
 */
let m: Awaited<ReturnType<typeof memMirror>>;
let disk: MemDisk;
let ctx: Ctx;
const file = (content: string): FileRecord => fileRecord(content);

/** `notes`, a file here at version 1/4, and a peer's `notes/today.txt` arriving under it. */
async function notesWithAChildArriving(): Promise<void> {
  disk.writeFile(at('notes'), 'my notes');
  ctx.index.set('notes', {
    type: 'file',
    size: 8,
    mtimeMs: 1,
    ino: 1,
    mode: 0o644,
    hash: sha256(Buffer.from('my notes')),
    blocks: [],
    target: null,
    version: [1, 4],
    ancestors: [],
  });
  await m.arrives('notes/today.txt', file('t'), [2, 9]);
}

beforeEach(async () => {
  m = await memMirror();
  ({ disk, ctx } = m);
});
afterEach(() => m.close());

describe('a file that arrives over a directory with live contents', () => {
  it('loses: its content becomes the conflict copy named after its version, the directory stays', async () => {
    disk.mkdir(at('docs'));
    disk.writeFile(at('docs/a.txt'), 'a');
    await m.arrives('docs/a.txt', file('a'), [2, 1]);
    const clash = new TypeClash(ctx);
    expect(clash.hasLiveChildren('docs')).toBe(true);
    await m.arrives('docs', file('the file'), [3, 7]);

    const copy = await clash.keepDirectory('docs', kvFile(m.node, 'docs')!);
    expect(copy).toBe('docs.sync-conflict-3-7');
    expect(disk.readFile(at(copy)).toString()).toBe(contentOf(keyOf('docs'), [3, 7]));
    expect(disk.lstat(at(copy)).mtimeMs).toBe(5000);
    expect(disk.lstat(at(copy)).mode).toBe(0o640);
    expect(disk.lstat(at('docs')).isDirectory()).toBe(true);
    expect(disk.readFile(at('docs/a.txt')).toString()).toBe('a');
    // Published as a directory that saw the file: every node converges on the directory.
    const now = kvFile(m.node, 'docs')!;
    expect(now.record.type).toBe('dir');
    expect(now.record.prev).toEqual([3, 7]);
    expect(ctx.index.get('docs')?.version).toEqual(now.version);
    expect(m.events).toEqual([
      'conflict docs a directory with contents wins: kept the file as docs.sync-conflict-3-7',
    ]);
  });

  it('a child whose record is a delete is not live contents', async () => {
    disk.mkdir(at('old'));
    disk.writeFile(at('old/gone.txt'), 'still on disk');
    const deleted: FileRecord = { ...file(''), type: 'deleted', size: 0, hash: '', mode: 0 };
    await m.arrives('old/gone.txt', deleted, [2, 2]);
    expect(new TypeClash(ctx).hasLiveChildren('old')).toBe(false);
    disk.fail('readdir', at('old'), 'EACCES');
    expect(new TypeClash(ctx).hasLiveChildren('old')).toBe(false); // unreadable: unknown, no clash
  });
});

describe('a path that arrives under what is a file here', () => {
  it('moves the file aside as its conflict copy and makes the directory', async () => {
    await notesWithAChildArriving();
    expect(fileParents(disk, ROOT, 'notes/today.txt')).toEqual(['notes']);
    const copy = await new TypeClash(ctx).moveFileAside('notes', 'notes/today.txt');
    expect(copy).toBe('notes.sync-conflict-1-4');
    expect(disk.readFile(at(copy!)).toString()).toBe('my notes');
    expect(disk.lstat(at('notes')).isDirectory()).toBe(true);
    expect(kvFile(m.node, 'notes')?.record.type).toBe('dir');
    expect(fileParents(disk, ROOT, 'notes/today.txt')).toEqual([]);
  });

  it('loses nothing when the move fails: the file stays, the index too, the error is thrown', async () => {
    await notesWithAChildArriving();
    disk.fail('rename', at('notes'), 'EACCES');
    await expect(new TypeClash(ctx).moveFileAside('notes', 'notes/today.txt')).rejects.toThrow(
      'EACCES',
    );
    expect(disk.readFile(at('notes')).toString()).toBe('my notes');
    expect(ctx.index.get('notes')?.version).toEqual([1, 4]);
    expect(kvFile(m.node, 'notes')).toBeNull(); // nothing published

    // The disk is full when the directory is made: the copy is made, nothing else changes; the
    // apply's retry finds no file in the way and makes the directory then.
    disk.fail('mkdir', at('notes'), 'ENOSPC');
    await expect(new TypeClash(ctx).moveFileAside('notes', 'notes/today.txt')).rejects.toThrow(
      'ENOSPC',
    );
    expect(disk.readFile(at('notes.sync-conflict-1-4')).toString()).toBe('my notes');
    expect(kvFile(m.node, 'notes')).toBeNull();
    expect(fileParents(disk, ROOT, 'notes/today.txt')).toEqual([]);
  });
});
