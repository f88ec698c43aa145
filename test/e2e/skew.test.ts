import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/tmp.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, exists, FsNode } from './cluster.js';

/** Three real nodes, two of them with clocks two hours off (one behind, one ahead). */
const t = tempNodes('filesync-skew-');
const nodes = t.nodes;

const HOURS_2 = 2 * 3600_000;
const skewed = (name: string, offsetMs: number): FsNode =>
  new FsNode(path.join(t.dir, name), [], false, {
    FILESYNC_TEST_CLOCK_OFFSET_MS: String(offsetMs),
  });

describe('clocks two hours apart', () => {
  it('converge, a later edit on the slow node wins, and a delete made after seeing a version stays', async () => {
    const a = new FsNode(path.join(t.dir, 'a'));
    const slow = skewed('slow', -HOURS_2);
    const fast = skewed('fast', HOURS_2);
    nodes.push(a, slow, fast);
    await a.start();
    await slow.start(['--peers', a.advertise]);
    await fast.start(['--peers', a.advertise]);
    for (const n of nodes)
      await writeFile(path.join(n.dir, `from-${path.basename(n.dir)}.txt`), 'hi');
    await converge(nodes, 'files written on every node to reach every node');

    // The fast node writes; the slow one edits after seeing it: the edit is the later write.
    const f = (n: FsNode): string => path.join(n.dir, 'doc.txt');
    await writeFile(f(fast), 'v1 from the fast clock');
    await waitFor(
      async () => (await readFile(f(slow), 'utf8').catch(() => '')) === 'v1 from the fast clock',
      'v1 on the slow node',
    );
    await writeFile(f(slow), 'v2 from the slow clock, made later');
    await converge(nodes, 'the slow node’s later edit everywhere');
    for (const n of nodes)
      expect(await readFile(f(n), 'utf8')).toBe('v2 from the slow clock, made later');

    // A delete on the slow node of the fast node's file is not undone.
    await rm(path.join(slow.dir, 'from-fast.txt'));
    await converge(nodes, 'the delete everywhere');
    for (const n of nodes) expect(await exists(path.join(n.dir, 'from-fast.txt'))).toBe(false);

    // Each node reports how far the others' stamps ran ahead of its clock.
    type S = { node: { id: number }; peers: { id: number; clockAheadMs: number }[] };
    const st = async (n: FsNode): Promise<S> =>
      (await (await fetch(`http://${n.advertise}/status`)).json()) as S;
    const fastId = (await st(fast)).node.id;
    const seen = (await st(slow)).peers.find((p) => p.id === fastId)?.clockAheadMs ?? 0;
    expect(seen).toBeGreaterThan(HOURS_2 * 1.5);
  }, 120_000);
});
