import { appendFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { DiskIndex, type IndexEntry } from './disk-index.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('index-journal-')));
afterEach(() => cleanup());

const entry = (seq: number): IndexEntry => ({
  type: 'file',
  size: 1,
  mtimeMs: 1,
  ino: seq,
  mode: 0o644,
  hash: 'a'.repeat(64),
  blocks: [],
  target: null,
  version: [7, seq],
  ancestors: [],
});

describe('the disk index journal', () => {
  it('brings back every change made after the last save, as a killed process left it', async () => {
    const a = await DiskIndex.load(dir);
    a.set('x', entry(1));
    await a.save();
    a.set('x', entry(2));
    a.set('y', entry(3));
    a.delete('y');
    a.set('z', entry(4));
    await a.journalled(); // handed to the disk, never saved: then the process dies
    const b = await DiskIndex.load(dir);
    expect(b.get('x')?.version).toEqual([7, 2]);
    expect(b.get('y')).toBeUndefined();
    expect(b.get('z')?.version).toEqual([7, 4]);
  });

  it('stops at a torn record and drops journals a save covers', async () => {
    const a = await DiskIndex.load(dir);
    a.set('x', entry(1));
    await a.journalled();
    const journals = (await readdir(dir)).filter((n) => n.startsWith('index.journal-'));
    await appendFile(path.join(dir, journals[0]!), Buffer.from([0, 0, 0, 50, 1, 2])); // torn
    const b = await DiskIndex.load(dir);
    expect(b.get('x')?.version).toEqual([7, 1]);
    b.set('w', entry(5));
    await b.save();
    const left = (await readdir(dir)).filter((n) => n.startsWith('index.journal-'));
    expect(left).toHaveLength(1); // only the one the save started
    await writeFile(path.join(dir, 'unrelated'), 'x');
    const c = await DiskIndex.load(dir);
    expect(c.get('w')?.version).toEqual([7, 5]);
    expect(c.get('x')?.version).toEqual([7, 1]);
  });
});
