import { mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { realDisk } from './disk.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { RealParents, UnsafePathError } from './safe-fs.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('safe-fs-')));
afterEach(() => cleanup());

describe('RealParents', () => {
  it('refuses a path under a symlinked or non-directory parent, at any depth', async () => {
    await mkdir(path.join(dir, 'a/b'), { recursive: true });
    await symlink('/etc', path.join(dir, 'a/link'));
    const p = new RealParents(dir, realDisk);
    expect(p.ok('a/b/c.txt')).toBe(true);
    expect(p.ok('a/link/hostname')).toBe(false);
    expect(p.ok('a/link/x/y')).toBe(false);
    expect(p.ok('missing/x')).toBe(true); // nothing exists below a missing parent
    expect(p.ok('top.txt')).toBe(true);
    expect(() => p.assert('a/link/hostname')).toThrow(UnsafePathError);
  });

  it('trusts a checked parent only until told it may have changed', async () => {
    await mkdir(path.join(dir, 'd'));
    const p = new RealParents(dir, realDisk);
    const t0 = 1_000_000;
    expect(p.ok('d/x', t0)).toBe(true);
    await rm(path.join(dir, 'd'), { recursive: true });
    await symlink('/etc', path.join(dir, 'd'));
    p.forget(); // what this node does whenever it removes or replaces a path
    expect(p.ok('d/x', t0 + 1)).toBe(false);
    // A change made behind its back (by the user) is seen once the trust runs out.
    await rm(path.join(dir, 'd'));
    await mkdir(path.join(dir, 'd'));
    expect(p.ok('d/x', t0 + 2)).toBe(true);
    await rm(path.join(dir, 'd'), { recursive: true });
    await symlink('/etc', path.join(dir, 'd'));
    expect(p.ok('d/x', t0 + 3)).toBe(true); // trusted a moment ago
    expect(p.ok('d/x', t0 + 5000)).toBe(false);
  });
});
