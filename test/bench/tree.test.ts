import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entryCount, identicalAt, until } from '../../bench/sync/tree.js';
import { tempDir } from '../helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('tree-'));
});
afterEach(() => cleanup());

async function tree(name: string, files: Record<string, string>): Promise<string> {
  const root = path.join(dir, name);
  for (const [p, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, p)), { recursive: true });
    await writeFile(path.join(root, p), body);
  }
  return root;
}

describe('bench tree comparison', () => {
  it('gives identical trees a time from within the look that found them so', async () => {
    const a = await tree('a', { 'x/one': 'same', two: 'also same' });
    const b = await tree('b', { 'x/one': 'same', two: 'also same' });
    const before = performance.now();
    const at = await identicalAt(a, b, []);
    expect(at).not.toBeNull();
    expect(at!).toBeGreaterThanOrEqual(before);
    expect(at!).toBeLessThanOrEqual(performance.now());
  });

  it('counts paths (dirs too) without excluded ones or Syncthing temp files', async () => {
    const a = await tree('a', {
      'x/one': '1',
      'x/y/two': '2',
      three: '3',
      '.filesync/index': 'not content',
      'x/.syncthing.one.tmp': 'temp',
    });
    expect(entryCount(a, ['.filesync'])).toBe(5); // x, x/one, x/y, x/y/two, three
    expect(entryCount(path.join(dir, 'missing'), [])).toBe(0);
  });

  it('finds trees different when only the content differs (same names, sizes and modes)', async () => {
    const a = await tree('a', { 'x/one': 'same', two: 'aaaa' });
    const b = await tree('b', { 'x/one': 'same', two: 'bbbb' });
    expect(await identicalAt(a, b, [])).toBeNull();
    const c = await tree('c', { 'x/one': 'same', two: 'aaaa', three: '' });
    expect(await identicalAt(a, c, [])).toBeNull();
  });

  it('measures to the time the condition reports, not to when the poll returned', async () => {
    const t0 = performance.now();
    let polls = 0;
    const ms = await until(() => Promise.resolve(++polls < 3 ? null : t0 + 7), t0, 10_000, 'x');
    expect(ms).toBeCloseTo(7, 6); // (t0 + 7) - t0 need not be exactly 7 in floating point
    expect(
      await until(() => Promise.resolve(true), performance.now(), 10_000, 'y'),
    ).toBeGreaterThanOrEqual(0);
  });
});
