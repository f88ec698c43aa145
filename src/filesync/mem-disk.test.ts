import { describe, expect, it } from 'vitest';
import { lstatOr } from './disk.js';
import { MemDisk } from './mem-disk.js';

describe('MemDisk', () => {
  it('answers as a POSIX disk does', () => {
    const d = new MemDisk('/r');
    d.mkdir('/r/a');
    d.writeFile('/r/a/f', 'x');
    expect(d.readdir('/r')).toEqual(['a']);
    expect(() => d.mkdir('/r/a')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => d.mkdir('/r/b/c')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => d.lstat('/r/a/f/g')).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    expect(() => d.readdir('/r/a/f')).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    d.mkdir('/r/b');
    d.writeFile('/r/b/g', 'y');
    expect(() => d.rename('/r/a', '/r/b')).toThrow(expect.objectContaining({ code: 'ENOTEMPTY' }));
    expect(() => d.rename('/r/a/f', '/r/b')).toThrow(expect.objectContaining({ code: 'EISDIR' }));
    d.rename('/r/a', '/r/c'); // a directory moves with its contents
    expect(d.readFile('/r/c/f').toString()).toBe('x');
    expect(lstatOr(d, '/r/a')).toBeNull();
    d.symlink('../c', '/r/b/l');
    expect(d.lstat('/r/b/l').isSymbolicLink()).toBe(true);
    expect(d.readlink('/r/b/l')).toBe('../c');
    d.chmod('/r/c/f', 0o4755);
    expect(d.lstat('/r/c/f').mode).toBe(0o4755);
  });

  it('fails a call on demand, as often as asked, for the paths asked', () => {
    const d = new MemDisk('/r');
    d.fail('mkdir', '/r/x', 'ENOSPC', 2);
    expect(() => d.mkdir('/r/x')).toThrow('ENOSPC');
    d.mkdir('/r/y'); // another path
    expect(() => d.mkdir('/r/x')).toThrow('ENOSPC');
    d.mkdir('/r/x'); // the third time it works
    expect(d.lstat('/r/x').isDirectory()).toBe(true);
  });
});

describe('MemDisk at a power cut', () => {
  it('keeps what each directory held when last synced, and nothing after', async () => {
    const d = new MemDisk('/r');
    d.writeFile('/r/kept', 'old');
    await d.fsyncDir('/r');
    d.writeFile('/r/kept', 'new'); // rewritten since: its old self comes back
    d.writeFile('/r/lost', 'x'); // created since: gone
    d.mkdir('/r/sub');
    d.crash();
    expect(d.readdir('/r')).toEqual(['kept']);
    expect(d.readFile('/r/kept').toString()).toBe('old');
    d.writeFile('/r/late', 'y');
    d.syncAll(); // the kernel's writeback
    d.crash();
    expect(d.readdir('/r').sort()).toEqual(['kept', 'late']);
  });
});
