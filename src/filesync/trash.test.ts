import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { realDisk } from './disk.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { Trash } from './trash.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('trash-')));
afterEach(() => cleanup());

describe('trash', () => {
  it('keeps every version put, even of the same path, and a path that was a file then a dir', async () => {
    const t = new Trash(path.join(dir, 'trash'), 3600_000, realDisk);
    const put = async (rel: string, text: string): Promise<string> => {
      await mkdir(path.dirname(path.join(dir, 'root', rel)), { recursive: true });
      await writeFile(path.join(dir, 'root', rel), text);
      return t.put(path.join(dir, 'root', rel), rel);
    };
    const a1 = await put('d/a.txt', 'one');
    const a2 = await put('d/a.txt', 'two');
    const x = await put('x', 'file x');
    const xy = await put('x/y', 'x is a dir now');
    expect(new Set([a1, a2, x, xy]).size).toBe(4);
    expect(await readFile(a1, 'utf8')).toBe('one');
    expect(await readFile(a2, 'utf8')).toBe('two');
    expect(await readFile(x, 'utf8')).toBe('file x');
    expect(await readFile(xy, 'utf8')).toBe('x is a dir now');
    await expect(t.put(path.join(dir, 'root', 'missing'), 'missing')).rejects.toThrow();
  });
});
