import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { FsNode } from './cluster.js';

let base: string;
let cleanup: () => Promise<void>;
const nodes: FsNode[] = [];
beforeAll(async () => ({ dir: base, cleanup } = await tempDir('filesync-bin-')));
afterAll(async () => {
  for (const n of nodes) await n.stop('SIGKILL').catch(() => undefined);
  await cleanup();
});

describe('the filesync command (bin/filesync.cjs)', () => {
  it('runs with the thread pool it asks for: UV_THREADPOOL_SIZE is set before node starts its pool', async () => {
    const n = new FsNode(path.join(base, 'a'), [], true);
    nodes.push(n);
    await n.start(['--no-tui']);
    // libuv starts every pool thread at once, at the first call that needs one (the start-up's
    // file reads have). Main thread + 64 pool threads + V8's and node's own: more than 64.
    // An ES-module entry started the pool while loading itself: 11 threads in all.
    const threads = (await readdir(`/proc/${n.pid}/task`)).length;
    expect(threads).toBeGreaterThan(64);
    expect(await n.stop()).toBe(0);
  });
});
