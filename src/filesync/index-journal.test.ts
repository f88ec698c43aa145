import { appendFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { setLogLevel } from '../log/index.js';
import { MemStoreDisk } from '../store/index.js';
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

  it('fails the wait of a row it could not write, writes nothing more, and a save mends it', async () => {
    const mem = new MemStoreDisk();
    const disk = mem.view();
    await disk.mkdirp('/data');
    const a = await DiskIndex.load('/data', disk);
    a.set('before', entry(1));
    await a.journalled();
    mem.fail('write', '/data/index.journal-', 'ENOSPC');
    setLogLevel('silent');
    a.noteLanding('x', entry(2));
    await expect(a.journalled()).rejects.toThrow('ENOSPC');
    a.set('after', entry(3)); // not written: the file may end in half a record
    await expect(a.journalled()).rejects.toThrow('ENOSPC');
    setLogLevel('info');
    await a.saveIfDue(); // due at once: the journal broke
    a.set('mended', entry(4));
    await a.journalled();
    const b = await DiskIndex.load('/data', disk);
    expect([...b.paths()].sort()).toEqual(['after', 'before', 'mended']);
    expect(b.landedAt('x')).toEqual(entry(2)); // carried into the new journal by the save
  });

  it('carries landings not settled into the journal a save starts, and forgets settled ones', async () => {
    const a = await DiskIndex.load(dir);
    a.noteLanding('x', entry(1));
    a.noteLanding('y', 'deleted');
    a.noteLanding('z', entry(2));
    a.set('z', entry(2)); // z's apply finished
    await a.save(); // drops the journal the notes were in
    await a.journalled();
    const b = await DiskIndex.load(dir);
    expect([b.landedAt('x'), b.landedAt('y'), b.landedAt('z')]).toEqual([
      entry(1),
      'deleted',
      undefined,
    ]);
    b.set('w', entry(3));
    await b.save(); // during the start scan: what it read is carried on, not taken for its own
    b.forgetLandings(); // the start scan is done: a save drops the journal that had them
    await b.save();
    await b.journalled();
    const c = await DiskIndex.load(dir);
    expect([c.landedAt('x'), c.landedAt('y')]).toEqual([undefined, undefined]);
  });

  it('a failed write nobody waits for breaks nothing else (no unhandled rejection)', async () => {
    const mem = new MemStoreDisk();
    const disk = mem.view();
    await disk.mkdirp('/data');
    const a = await DiskIndex.load('/data', disk);
    await a.journalled();
    mem.fail('write', '/data/index.journal-', 'EIO');
    setLogLevel('silent');
    a.set('x', entry(1)); // written at the end of the turn, by itself
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    setLogLevel('info');
    await expect(a.journalled()).rejects.toThrow('EIO');
  });
});
