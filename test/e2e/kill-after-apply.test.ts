import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, exists } from './cluster.js';

/**
 * kill -9 right after a node applied remote edits, then its user deletes some of those files
 * and edits the others while it is down: on restart the deletes and edits are the user's, on
 * every node, with no delete undone and no conflict copy of the node's own earlier version.
 */
const t = tempNodes('filesync-kill-apply-');

describe('kill -9 right after applying remote edits', () => {
  it('keeps the deletes and edits its user made while it was down', async () => {
    const [a, b] = await t.pair();
    const names = Array.from({ length: 20 }, (_, i) => `f${i}.txt`);
    await Promise.all(names.map((n) => writeFile(path.join(a.dir, n), `v1 of ${n}`)));
    await converge([a, b], 'the first versions on b');
    await Promise.all(names.map((n) => writeFile(path.join(a.dir, n), `v2 of ${n} from a`)));
    await converge([a, b], 'the edits applied on b');
    await b.stop('SIGKILL');
    // b's user, while b is down: deletes half, edits the other half.
    for (const [i, n] of names.entries()) {
      if (i % 2 === 0) await rm(path.join(b.dir, n));
      else await writeFile(path.join(b.dir, n), `v3 of ${n} by b's user`);
    }
    await b.start(['--peers', a.advertise]);
    await converge([a, b], 'b’s offline changes everywhere', 30_000);
    for (const n of [a, b]) {
      for (const [i, f] of names.entries()) {
        const p = path.join(n.dir, f);
        if (i % 2 === 0) expect(await exists(p), `${p} deleted`).toBe(false);
        else expect(await readFile(p, 'utf8')).toBe(`v3 of ${f} by b's user`);
      }
      const copies = (await readdir(n.dir)).filter((f) => f.includes('sync-conflict'));
      expect(copies, n.dir).toEqual([]);
    }
    expect(a.stderr + b.stderr).not.toMatch(/kept-edit/);
  }, 120_000);
});
