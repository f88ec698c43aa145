import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { Codec } from '../codec/index.js';
import { setLogLevel } from '../log/index.js';
import { DiskIndex, MIN_SAVE_INTERVAL_MS, SAVE_CHUNK_ROWS, type IndexEntry } from './disk-index.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('disk-index-')));
afterEach(() => cleanup());

const H = (c: string): string => c.repeat(64);
const file = (hash: string, blocks: string[] = []): IndexEntry => ({
  type: 'file',
  size: 3,
  mtimeMs: 1.5,
  ino: 7,
  mode: 0o644,
  hash,
  blocks,
  target: null,
  version: [2, 9],
  ancestors: [],
});

describe('disk index', () => {
  it('finds every path holding a hash as paths come and go', () => {
    const idx = new DiskIndex(path.join(dir, 'index'));
    idx.set('a', file(H('a')));
    idx.set('b', file(H('a')));
    idx.set('c', file(H('a')));
    expect(idx.withHash(H('a')).sort()).toEqual(['a', 'b', 'c']);
    idx.delete('b');
    idx.set('c', file(H('c')));
    expect(idx.withHash(H('a'))).toEqual(['a']);
    expect(idx.withHash(H('c'))).toEqual(['c']);
    idx.set('a', file(H('b')));
    expect(idx.withHash(H('a'))).toEqual([]);
    idx.set('x', file(H('d'), [H('e'), H('f')]));
    idx.set('y', file(H('9'), [H('e')]));
    expect(idx.withBlock(H('e')).sort()).toEqual(['x', 'y']);
    idx.delete('x');
    expect(idx.withBlock(H('e'))).toEqual(['y']);
    expect(idx.withBlock(H('f'))).toEqual([]);
  });

  it('saves and loads every field, and rebuilds from nothing when a row is malformed', async () => {
    const idx = new DiskIndex(path.join(dir, 'index'));
    idx.set('a', file(H('a'), [H('1'), H('2')]));
    idx.set('d', { ...file(''), type: 'dir', version: null });
    idx.set('l', { ...file(''), type: 'symlink', target: '../a' });
    await idx.save();
    const back = await DiskIndex.load(dir);
    expect([...back.entries()]).toEqual([...idx.entries()]);
    expect(back.withBlock(H('2'))).toEqual(['a']);

    const codec = new Codec({ useRecords: false, mapsAsObjects: true });
    const x = codec.unpack(await readFile(path.join(dir, 'index'))) as { rows: unknown[][] };
    x.rows[1]![2] = -1; // a negative size
    await writeFile(path.join(dir, 'index'), codec.pack(x));
    setLogLevel('silent');
    const rebuilt = await DiskIndex.load(dir);
    setLogLevel('info');
    expect(rebuilt.size).toBe(0);
    expect(rebuilt.withHash(H('a'))).toEqual([]);
  });

  it('saves a large index in chunks as the one document a single encode would make', async () => {
    const idx = new DiskIndex(path.join(dir, 'index'));
    const n = 2 * SAVE_CHUNK_ROWS + 70_000; // two whole chunks, a part, and an array32 header
    for (let i = 0; i < n; i++) idx.set(`d/${i}`, { ...file(H('a')), size: i });
    idx.set('later', file(H('b')));
    const saving = idx.save();
    idx.set('during', file(H('c'))); // after the save began: not in this save, but it stays dirty
    await saving;
    const codec = new Codec({ useRecords: false, mapsAsObjects: true });
    const doc = codec.unpack(await readFile(path.join(dir, 'index'))) as {
      format: number;
      rows: unknown[][];
    };
    expect(Object.keys(doc)).toEqual(['format', 'rows']);
    expect(doc.rows).toHaveLength(n + 1);
    expect(doc.rows[n - 1]!.slice(0, 3)).toEqual([`d/${n - 1}`, 'file', n - 1]);
    const back = await DiskIndex.load(dir);
    expect(back.size).toBe(n + 1);
    expect(back.get('d/12345')).toEqual(idx.get('d/12345'));
    await idx.save();
    expect((await DiskIndex.load(dir)).get('during')).toBeDefined();
  });

  it('spaces periodic saves by what a save costs, at least MIN_SAVE_INTERVAL_MS', async () => {
    const idx = new DiskIndex(path.join(dir, 'index'));
    const mtime = async (): Promise<number> =>
      (await stat(path.join(dir, 'index')).catch(() => null))?.mtimeMs ?? -1;
    idx.set('a', file(H('a')));
    await idx.saveIfDue(1000);
    const first = await mtime();
    expect(first).toBeGreaterThan(0);
    idx.set('b', file(H('b')));
    await idx.saveIfDue(1000 + MIN_SAVE_INTERVAL_MS - 1);
    expect((await DiskIndex.load(dir)).size).toBe(1);
    await idx.saveIfDue(1000 + 3600_000);
    expect((await DiskIndex.load(dir)).size).toBe(2);
  });

  it('shares one frozen empty block list', () => {
    const idx = new DiskIndex(path.join(dir, 'index'));
    idx.set('a', file(H('a')));
    idx.set('b', file(H('b')));
    expect(idx.get('a')!.blocks).toBe(idx.get('b')!.blocks);
    expect(() => idx.get('a')!.blocks.push(H('c'))).toThrow();
  });
});

describe('disk index, applies under way when the process died', () => {
  it('tells the next start what an apply was putting at a path, until its record follows', async () => {
    const idx = await DiskIndex.load(dir);
    idx.noteLanding('a', file(H('a')));
    idx.noteLanding('b', file(H('b')));
    idx.set('b', file(H('b'))); // b's apply finished and was recorded
    idx.noteLanding('c', 'deleted');
    await idx.journalled(); // killed here: nothing of this was saved whole
    const back = await DiskIndex.load(dir);
    expect(back.landedAt('a')).toEqual(file(H('a')));
    expect(back.landedAt('b')).toBeUndefined();
    expect(back.get('b')).toEqual(file(H('b')));
    expect(back.landedAt('c')).toBe('deleted');
    expect(back.get('a')).toBeUndefined(); // a landing is no index entry
    back.forgetLandings();
    expect(back.landedAt('a')).toBeUndefined();
  });

  it("keeps each version's lineage through a save, the journal and a landing", async () => {
    const lineage = {
      ...file(H('a')),
      ancestors: [
        [1, 3],
        [2, 2],
      ] as IndexEntry['ancestors'],
    };
    const idx = await DiskIndex.load(dir);
    idx.set('saved', lineage);
    await idx.save();
    idx.set('journalled', lineage);
    idx.noteLanding('landing', lineage);
    await idx.journalled();
    const back = await DiskIndex.load(dir);
    expect(back.get('saved')).toEqual(lineage);
    expect(back.get('journalled')).toEqual(lineage);
    expect(back.landedAt('landing')).toEqual(lineage);
  });

  it('reads rows written before lineages were kept, and refuses a malformed lineage', async () => {
    const codec = new Codec({ useRecords: false, mapsAsObjects: true });
    const row = ['a', 'file', 3, 1.5, 7, 0o644, H('a'), [], null, [2, 9]];
    await writeFile(path.join(dir, 'index'), codec.pack({ format: 2, rows: [row] }));
    expect((await DiskIndex.load(dir)).get('a')).toEqual(file(H('a')));
    const tooLong = Array.from({ length: 17 }, (_, i) => [1, i + 1]);
    for (const bad of [[['x', 1]], tooLong, 'x']) {
      await writeFile(path.join(dir, 'index'), codec.pack({ format: 2, rows: [[...row, bad]] }));
      setLogLevel('silent');
      const rebuilt = await DiskIndex.load(dir);
      setLogLevel('info');
      expect(rebuilt.size).toBe(0);
    }
  });
});
