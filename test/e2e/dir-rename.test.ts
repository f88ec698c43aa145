import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'vitest';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, FsNode } from './cluster.js';

/** Renamed directories reach peers at watch speed, not at the next full rescan. */
const t = tempNodes('filesync-dirmv-');
const nodes = t.nodes;

describe('a renamed directory', () => {
  it('of 2000 files, and then a case-only rename of it, is identical on the peers long before a rescan', async () => {
    // Rescans every 10 minutes: whatever converges below came through the watcher.
    const slow = ['--rescan-interval', '10m'];
    const a = new FsNode(path.join(t.dir, 'a'), slow);
    const b = new FsNode(path.join(t.dir, 'b'), slow);
    const c = new FsNode(path.join(t.dir, 'c'), slow);
    nodes.push(a, b, c);
    // Written before a starts: its start scan publishes them (no watcher race with the writes).
    await mkdir(path.join(a.dir, 'big/deeper'), { recursive: true });
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        writeFile(path.join(a.dir, i % 10 ? 'big' : 'big/deeper', `f${i}.txt`), `file ${i}`),
      ),
    );
    await a.start();
    await b.start(['--peers', a.advertise]);
    await c.start(['--peers', b.advertise]);
    await converge(nodes, 'the 2000 files everywhere', 60_000);
    await rename(path.join(a.dir, 'big'), path.join(a.dir, 'moved'));
    await converge(nodes, 'the renamed directory everywhere', 30_000);
    await rename(path.join(a.dir, 'moved'), path.join(a.dir, 'Moved'));
    await converge(nodes, 'the case-only rename everywhere', 30_000);
  }, 180_000);
});
