import { appendFile, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../../test/helpers/tmp.js';
import { getLogSink, setLogSink, type LogRecord } from '../log/index.js';
import { IgnoreRules } from './ignore.js';
import { Watcher } from './watcher.js';

let root: string;
let cleanup: () => Promise<void>;
let hints: Set<string>;
let w: Watcher;

beforeEach(async () => {
  ({ dir: root, cleanup } = await tempDir('watcher-'));
  hints = new Set();
  await mkdir(path.join(root, 'old/deep'), { recursive: true });
  await mkdir(path.join(root, 'skip'));
  const ignore = new IgnoreRules(root, ['skip/']);
  await ignore.reload();
  w = new Watcher(root, ignore, (rel) => hints.add(rel), { debounceMs: 5 });
  await w.start();
});
afterEach(async () => {
  await w.close();
  await cleanup();
});

const hinted = (rel: string): Promise<void> => waitFor(() => hints.has(rel), `a hint for ${rel}`);

describe('watcher', () => {
  it('hints files in existing, new and moved directories, and none under ignored ones', async () => {
    expect(w.watchedDirs).toBe(3); // root, old, old/deep (not skip)
    await writeFile(path.join(root, 'old/deep/a.txt'), 'a');
    await hinted('old/deep/a.txt');
    // A directory made and filled at once: what landed before its watch is hinted too.
    await mkdir(path.join(root, 'new/sub'), { recursive: true });
    await writeFile(path.join(root, 'new/sub/b.txt'), 'b');
    await hinted('new/sub/b.txt');
    await writeFile(path.join(root, 'new/sub/c.txt'), 'c');
    await hinted('new/sub/c.txt');
    // Moved: the old path is hinted (gone), the new tree is watched under its new name.
    await rename(path.join(root, 'old'), path.join(root, 'moved'));
    await hinted('old');
    await hinted('moved');
    hints.clear();
    await writeFile(path.join(root, 'moved/deep/d.txt'), 'd');
    await hinted('moved/deep/d.txt');
    expect([...hints].some((h) => h.startsWith('old/'))).toBe(false);
    await writeFile(path.join(root, 'skip/e.txt'), 'e');
    await writeFile(path.join(root, 'f.txt'), 'f');
    await hinted('f.txt');
    expect(hints.has('skip/e.txt')).toBe(false);
  });

  it('stops watching a removed tree', async () => {
    await rm(path.join(root, 'old'), { recursive: true });
    await hinted('old');
    await waitFor(() => w.watchedDirs === 1, 'only the root to be watched');
  });

  it('gives no hint for a file landing exactly as the index holds it (our own write)', async () => {
    await w.close();
    const indexed = new Map<string, number>(); // rel → inode the "index" holds
    const ignore = new IgnoreRules(root, []);
    w = new Watcher(root, ignore, (rel) => hints.add(rel), {
      debounceMs: 5,
      isIndexed: (rel, st) => indexed.get(rel) === st.ino,
    });
    await w.start();
    await writeFile(path.join(root, 'tmp-ours'), 'ours');
    await writeFile(path.join(root, 'tmp-theirs'), 'theirs');
    await hinted('tmp-theirs');
    hints.clear();
    indexed.set('ours', (await lstat(path.join(root, 'tmp-ours'))).ino);
    await rename(path.join(root, 'tmp-ours'), path.join(root, 'ours'));
    await rename(path.join(root, 'tmp-theirs'), path.join(root, 'theirs'));
    await hinted('theirs'); // events arrive in order: the echo came and went before this one
    expect(hints.has('ours')).toBe(false);
    expect(hints.has('tmp-ours')).toBe(true); // the name it left is still looked at
  });

  it('hints a file that keeps growing while it grows, not only once it stops', async () => {
    const seen = new Set<string>();
    const slow = new Watcher(root, new IgnoreRules(root, []), (rel) => seen.add(rel), {
      debounceMs: 100,
      maxWaitMs: 300,
    });
    await slow.start();
    try {
      const deadline = Date.now() + 10_000;
      // Appended every 20 ms: each event alone would push a 100 ms debounce back for ever.
      while (!seen.has('grow.log') && Date.now() < deadline) {
        await appendFile(path.join(root, 'grow.log'), 'line\n');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen.has('grow.log')).toBe(true);
    } finally {
      await slow.close();
    }
  });

  it('says once, with the fix, when the system runs out of watches; rescans cover the rest', async () => {
    const logged: LogRecord[] = [];
    const print = getLogSink();
    setLogSink((r) => logged.push(r));
    try {
      // What chokidar reports when inotify_add_watch fails for the limit.
      const chokidar = (w as unknown as { w: { emit: (e: string, x: Error) => void } }).w;
      const full = Object.assign(new Error('ENOSPC: System limit for number of file watchers'), {
        code: 'ENOSPC',
      });
      chokidar.emit('error', full);
      chokidar.emit('error', full);
    } finally {
      setLogSink(print);
    }
    const errors = logged.filter((r) => r.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toContain('sysctl fs.inotify.max_user_watches=524288');
  });
});
