import { statfs } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/tmp.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, exists, FsNode } from './cluster.js';

const t = tempNodes('filesync-datadir-', true);
const nodes = t.nodes;

const fsType = (p: string): Promise<number> =>
  new Promise((r, j) => statfs(p, (e, s) => (e ? j(e) : r(s.type))));

describe('where downloads and removed files wait', () => {
  it('a --data-dir on another filesystem still receives, replaces and deletes files', async (ctx) => {
    const shm = '/dev/shm';
    if (!(await exists(shm)) || (await fsType(shm)) === (await fsType(t.dir))) ctx.skip();
    const dataDir = await mkdtemp(path.join(shm, 'filesync-test-'));
    try {
      const a = new FsNode(path.join(t.dir, 'a'));
      const b = new FsNode(path.join(t.dir, 'b'), ['--data-dir', dataDir]);
      nodes.push(a, b);
      await a.start();
      await b.start(['--peers', a.advertise]);
      await writeFile(path.join(a.dir, 'f.txt'), 'one');
      await converge([a, b], 'a new file on b');
      await writeFile(path.join(a.dir, 'f.txt'), 'two, replacing one');
      await converge([a, b], 'the replaced file on b');
      await rm(path.join(a.dir, 'f.txt'));
      await converge([a, b], 'the delete on b');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a delete whose move to the trash fails keeps the file, is retried, and is not undone', async () => {
    const [a, b] = await t.pair();
    await writeFile(path.join(a.dir, 'keep.txt'), 'content');
    await converge([a, b], 'the file on b');
    // b's trash cannot be made: a file sits where its directory goes.
    const trash = path.join(b.dir, '.filesync/trash');
    await rm(trash, { recursive: true, force: true });
    await writeFile(trash, 'in the way');
    await rm(path.join(a.dir, 'keep.txt'));
    // Tried again after 1 s, then 2 s: rescans (every 2 s here) ran meanwhile, and must not
    // have taken the file for a new one and published it again.
    await waitFor(
      () => (b.stderr.match(/could not sync path path=keep\.txt/g)?.length ?? 0) >= 3,
      'b to fail the delete three times',
      30_000,
    );
    await writeFile(path.join(b.dir, 'later.txt'), 'a change after those rescans');
    await waitFor(() => exists(path.join(a.dir, 'later.txt')), 'b’s later change on a');
    expect(await exists(path.join(a.dir, 'keep.txt'))).toBe(false);
    expect(await exists(path.join(b.dir, 'keep.txt'))).toBe(true);
    await rm(trash);
    await converge([a, b], 'the retried delete on b', 60_000);
    expect(await exists(path.join(b.dir, 'keep.txt'))).toBe(false);
  }, 90_000);
});
