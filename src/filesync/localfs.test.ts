import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { readBlockAt } from './localfs.js';

const readBlock = async (abs: string, i: number): Promise<Buffer | null> =>
  (await readBlockAt(abs, i, false))?.data ?? null;

describe('readBlockAt', () => {
  it('reads a file’s block, and finds none in a directory that took a file’s place', async () => {
    const { dir, cleanup } = await tempDir('filesync-blocks-');
    try {
      await writeFile(path.join(dir, 'f'), 'abc');
      expect((await readBlock(path.join(dir, 'f'), 0))?.toString()).toBe('abc');
      await mkdir(path.join(dir, 'd'));
      expect(await readBlock(path.join(dir, 'd'), 0)).toBeNull();
      expect(await readBlock(path.join(dir, 'missing'), 0)).toBeNull();
    } finally {
      await cleanup();
    }
  });
});
