import { appendFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, FsNode } from './cluster.js';

/** A file that keeps growing reaches peers while it grows, version after version. */
const t = tempNodes('filesync-grow-');
const nodes = t.nodes;

describe('a growing file', () => {
  it('appended every 20 ms is published again and again while it grows', async () => {
    const a = new FsNode(path.join(t.dir, 'a'), ['--rescan-interval', '10m']);
    const b = new FsNode(path.join(t.dir, 'b'), ['--rescan-interval', '10m']);
    nodes.push(a, b);
    await a.start();
    await b.start(['--peers', a.advertise]);
    const sizes = new Set<number>();
    const deadline = Date.now() + 60_000;
    // Until b has held two different non-empty versions, with a still appending.
    while (sizes.size < 2 && Date.now() < deadline) {
      await appendFile(path.join(a.dir, 'app.log'), `${Date.now()} a line of the log\n`);
      const st = await stat(path.join(b.dir, 'app.log')).catch(() => null);
      if (st !== null && st.size > 0) sizes.add(st.size);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(sizes.size, a.stderr.slice(-2000)).toBe(2);
    await converge(nodes, 'the last version once it stops', 30_000);
  }, 120_000);
});
