import { describe, expect, it } from 'vitest';
import { MemDisk } from './mem-disk.js';
import type { IndexEntry } from './disk-index.js';
import { notIndexed, permBits, typeOf, unchanged } from './stat.js';

const disk = new MemDisk('/r');
disk.writeFile('/r/a', 'abc', 0o640);
disk.mkdir('/r/d');
disk.symlink('a', '/r/l');
const st = disk.lstat('/r/a');
const entry: IndexEntry = {
  type: 'file',
  size: 3,
  mtimeMs: st.mtimeMs,
  ino: st.ino,
  mode: 0o640,
  hash: '',
  blocks: [],
  target: null,
  version: [1, 1],
  ancestors: [],
};

describe('what a stat means to the mirror', () => {
  it('types and permission bits', () => {
    expect([typeOf(st), typeOf(disk.lstat('/r/d')), typeOf(disk.lstat('/r/l'))]).toEqual([
      'file',
      'dir',
      'symlink',
    ]);
    expect(permBits(0o104755)).toBe(0o755);
  });

  it('unchanged while size, mtime, inode, mode and type match the index', () => {
    expect(unchanged(entry, st, 'file')).toBe(true);
    for (const off of [{ size: 4 }, { mtimeMs: 1 }, { ino: 99 }, { mode: 0o600 }])
      expect(unchanged({ ...entry, ...off }, st, 'file')).toBe(false);
    expect(unchanged(entry, st, 'symlink')).toBe(false);
  });

  it('a file the index does not hold as it is is new content; a directory never is', () => {
    expect(notIndexed(st, entry)).toBe(false);
    expect(notIndexed(st, undefined)).toBe(true);
    expect(notIndexed(st, { ...entry, size: 4 })).toBe(true);
    expect(notIndexed(null, undefined)).toBe(false);
    expect(notIndexed(disk.lstat('/r/d'), undefined)).toBe(false);
  });
});
