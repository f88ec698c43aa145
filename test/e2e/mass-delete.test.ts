import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/tmp.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, exists } from './cluster.js';

const t = tempNodes('filesync-massdel-');

describe('the mass-delete guard', () => {
  it('holds the deletes of an emptied folder across a new file and restarts, until allowed', async () => {
    const [a, b] = await t.pair();
    const names = ['1.txt', '2.txt', '3.txt', '4.txt'];
    for (const n of names) await writeFile(path.join(a.dir, n), n);
    await converge([a, b], 'the files on b');
    const port = b.advertise.split(':').pop()!;

    for (const n of await readdir(b.dir)) if (n !== '.filesync') await rm(path.join(b.dir, n));
    await waitFor(() => b.stderr.includes('NOT propagating deletions'), 'b to hold the deletes');
    await writeFile(path.join(b.dir, 'new.txt'), 'made after emptying');
    await waitFor(() => exists(path.join(a.dir, 'new.txt')), 'the new file on a');
    await b.stop();
    await b.start(['--port', port, '--peers', a.advertise]);
    await waitFor(
      () => b.stderr.includes('still holding 4 deletions'),
      'b to say it still holds them',
    );
    await writeFile(path.join(b.dir, 'newer.txt'), 'after the restart');
    await waitFor(() => exists(path.join(a.dir, 'newer.txt')), 'the newer file on a');
    for (const n of names) expect(await exists(path.join(a.dir, n)), n).toBe(true);

    // The user means it: the deletes go out.
    await b.stop();
    await b.start(['--port', port, '--peers', a.advertise, '--allow-mass-delete']);
    await waitFor(async () => {
      for (const n of names) if (await exists(path.join(a.dir, n))) return false;
      return true;
    }, 'the deletes on a');
    expect(await exists(path.join(a.dir, 'new.txt'))).toBe(true);
  }, 120_000);
});
