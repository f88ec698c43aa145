import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { setLogLevel } from '../log/index.js';
import { IGNORE_FILE, IgnoreRules, MATCHER_TESTS_PER_BUILD } from './ignore.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('ignore-')));
afterEach(() => cleanup());

/** How many answers the `ignore` package holds in its (private) cache. */
function cached(rules: IgnoreRules): number {
  const m = (rules as unknown as { matcher: { _ignoreCache: object } }).matcher;
  return Object.keys(m._ignoreCache).length;
}

describe('ignore rules', () => {
  it('apply --ignore patterns and the file, never to .filesync/ or the file itself', async () => {
    const rules = new IgnoreRules(dir, ['*.log']);
    expect(rules.ignores('a.log')).toBe(true);
    expect(rules.ignores('a.txt')).toBe(false);
    expect(rules.ignores('.filesync/tmp/x')).toBe(true);
    setLogLevel('silent');
    await writeFile(path.join(dir, IGNORE_FILE), '# comment\nbuild/\n');
    expect(await rules.reload()).toBe(true);
    setLogLevel('info');
    expect(rules.ignores('build', true)).toBe(true);
    expect(rules.ignores('build/x.o')).toBe(true);
    expect(rules.ignores(IGNORE_FILE)).toBe(false);
    expect(rules.ignores('.filesync')).toBe(true);
  });

  it('frozen, stay as they were when the file changes', async () => {
    const rules = new IgnoreRules(dir, ['*.log']);
    setLogLevel('silent');
    await writeFile(path.join(dir, IGNORE_FILE), 'build/\n');
    await rules.reload();
    const before = rules.frozen();
    await writeFile(path.join(dir, IGNORE_FILE), 'dist/\n');
    expect(await rules.reload()).toBe(true);
    setLogLevel('info');
    expect([before.ignores('build/x'), before.ignores('dist/x'), before.ignores('a.log')]).toEqual([
      true,
      false,
      true,
    ]);
    expect([rules.ignores('build/x'), rules.ignores('dist/x')]).toEqual([false, true]);
  });

  it('with no patterns, ignores nothing but .filesync/ and never asks the matcher', () => {
    const rules = new IgnoreRules(dir, []);
    for (let i = 0; i < 1000; i++) expect(rules.ignores(`d${i % 10}/f${i}`)).toBe(false);
    expect(rules.ignores('.filesync/index')).toBe(true);
    expect(cached(rules)).toBe(0);
  });

  it('keeps the matcher from remembering every path it was ever asked about', () => {
    const rules = new IgnoreRules(dir, ['*.log']);
    for (let i = 0; i < 3 * MATCHER_TESTS_PER_BUILD; i++) {
      expect(rules.ignores(`d${i % 100}/f${i}.${i % 2 ? 'log' : 'txt'}`)).toBe(i % 2 === 1);
    }
    // Each test caches the path and (shared) parents; without rebuilds: 3 × 16,384 paths.
    expect(cached(rules)).toBeLessThanOrEqual(MATCHER_TESTS_PER_BUILD + 100);
  });
});
