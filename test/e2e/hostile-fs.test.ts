import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/core/index.js';
import { EvilPeer, type Frame } from '../helpers/evil-peer.js';
import { junkRecord } from '../helpers/records.js';
import { waitFor } from '../helpers/tmp.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, exists, FsNode } from './cluster.js';

/** A hostile member against the mirror: real nodes, the real wire protocol. */
const t = tempNodes('filesync-hostile-fs-', true);
const nodes = t.nodes;
const peers: EvilPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

interface Status {
  node: { id: number };
  peers: { id: number; connected: boolean }[];
  parked: number;
}
const status = async (n: FsNode): Promise<Status> =>
  (await (await fetch(`http://${n.advertise}/status`)).json()) as Status;

async function pair(): Promise<{ a: FsNode; b: FsNode; evil: EvilPeer }> {
  const a = new FsNode(path.join(t.dir, 'a'), ['--no-discover']);
  const b = new FsNode(path.join(t.dir, 'b'), ['--no-discover']);
  nodes.push(a, b);
  await a.start();
  await b.start(['--peers', a.advertise]);
  const bId = (await status(b)).node.id;
  await waitFor(
    async () => (await status(a)).peers.some((p) => p.id === bId && p.connected),
    'b to link with a',
  );
  const evil = await EvilPeer.connect(a.advertise);
  peers.push(evil);
  return { a, b, evil };
}

describe('a hostile member against the mirror', () => {
  it('cannot starve honest changes with records whose content it never serves', async () => {
    const { a, b, evil } = await pair();
    const junk: Entry[] = Array.from({ length: 300 }, (_, i) => ({
      key: `__file/junk/${i}.bin`,
      value: junkRecord({}),
      meta: { node: evil.id, seq: i + 1, ts: Date.now() },
    }));
    for (let i = 0; i < junk.length; i += 100) evil.push(junk.slice(i, i + 100));
    // Its block requests are never answered (the attacker holds them): every apply slot of a
    // would be waiting on it.
    await evil.expectFrame((f) => f.t === 'block' || f.t === 'blocks', 'a to ask the attacker');
    for (let i = 0; i < 3; i++) {
      await writeFile(path.join(b.dir, `honest-${i}.txt`), `honest edit ${i}`);
      // Normally a tenth of a second; before the junk was parked, a minute.
      await converge([a, b], `honest edit ${i} to reach a while junk waits`, 20_000);
    }
    // The junk is parked (tried again after growing pauses), not retried every second.
    await waitFor(
      async () => (await status(a)).parked >= 64,
      'the first junk paths parked',
      60_000,
    );
    const warned = a.stderr
      .split('\n')
      .filter((l) => l.includes('junk/7.bin"') || l.includes('junk/7.bin ')).length;
    expect(warned).toBeLessThanOrEqual(4);
  }, 120_000);

  it('cannot make a node read a file outside the root through a symlink record', async () => {
    const { a, evil } = await pair();
    const aId = evil.victim;
    const outside = path.join(t.dir, 'outside');
    await mkdir(outside);
    const secret = Buffer.from('the host’s secret\n');
    await writeFile(path.join(outside, 'secret.txt'), secret);
    const now = Date.now();
    const link = junkRecord({ type: 'symlink', size: 0, hash: '', target: outside });
    evil.push([{ key: '__file/s', value: link, meta: { node: evil.id, seq: 1, ts: now } }]);
    await waitFor(
      async () => (await lstat(path.join(a.dir, 's')).catch(() => null))?.isSymbolicLink() === true,
      'the link made as given',
    );
    evil.push([
      {
        key: '__file/s/secret.txt',
        value: junkRecord({}),
        meta: { node: evil.id, seq: 2, ts: now + 1 },
      },
    ]);
    const published = (f: Frame): boolean =>
      f.t === 'push' &&
      (f.entries as unknown[][]).some((e) => e[0] === '__file/s/secret.txt' && e[2] === aId);
    await waitFor(
      () => a.stderr.includes('s/secret.txt') || evil.frames.some(published),
      'a to refuse or publish the path under the link',
      30_000,
    );
    // The attacker asks for the secret's content by hash: a has nothing to give.
    const hash = createHash('sha256').update(secret).digest('hex');
    const rid = evil.nextRid();
    evil.sendFrame({
      t: 'block',
      rid,
      key: '__file/s/secret.txt',
      node: aId,
      seq: 1,
      index: 0,
      hash,
    });
    const res = await evil.expectFrame((f) => f.t === 'block-res' && f.rid === rid, 'the answer');
    expect(res.data).toBeNull();
    expect(evil.frames.some(published)).toBe(false);
  }, 60_000);

  it('cannot make a node write outside the root by swapping a parent for a symlink mid-fetch', async () => {
    const { a, evil } = await pair();
    const outside = path.join(t.dir, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'target.txt'), 'precious');
    const body = Buffer.from('pwned');
    const hash = createHash('sha256').update(body).digest('hex');
    const held: Frame[] = [];
    evil.onFrame = (f) => void ((f.t === 'block' || f.t === 'blocks') && held.push(f));
    const now = Date.now();
    const dir = junkRecord({ type: 'dir', size: 0, hash: '', mode: 0o755 });
    evil.push([
      { key: '__file/d', value: dir, meta: { node: evil.id, seq: 1, ts: now } },
      {
        key: '__file/d/evil',
        value: junkRecord({ size: body.length, hash }),
        meta: { node: evil.id, seq: 2, ts: now },
      },
      {
        key: '__file/d/target.txt',
        value: junkRecord({ size: body.length, hash }),
        meta: { node: evil.id, seq: 3, ts: now },
      },
    ]);
    await waitFor(() => held.length > 0, 'a to ask for the content (held by the attacker)');
    const link = junkRecord({
      type: 'symlink',
      size: 0,
      hash: '',
      target: outside,
      prev: [evil.id, 1],
    });
    // The children go first (a link cannot replace a directory with live paths under it);
    // their fetches are still waiting for the content.
    const gone = (prev: number): Uint8Array =>
      junkRecord({ type: 'deleted', size: 0, hash: '', prev: [evil.id, prev] });
    evil.push([
      { key: '__file/d/evil', value: gone(2), meta: { node: evil.id, seq: 4, ts: now + 1 } },
      { key: '__file/d/target.txt', value: gone(3), meta: { node: evil.id, seq: 5, ts: now + 1 } },
      { key: '__file/d', value: link, meta: { node: evil.id, seq: 6, ts: now + 1 } },
    ]);
    await waitFor(
      async () => (await lstat(path.join(a.dir, 'd')).catch(() => null))?.isSymbolicLink() === true,
      'd swapped for a link',
    );
    // Now the content arrives.
    const answer = (f: Frame): void => {
      if (f.t === 'block') evil.sendFrame({ t: 'block-res', rid: f.rid, data: body });
      else
        evil.sendFrame({
          t: 'blocks-res',
          rid: f.rid,
          data: (f.refs as unknown[]).map(() => body),
        });
    };
    held.forEach(answer);
    evil.onFrame = (f) => void ((f.t === 'block' || f.t === 'blocks') && answer(f));
    await waitFor(
      async () => (await exists(path.join(outside, 'evil'))) || a.stderr.includes('d/evil'),
      'a to finish or refuse the apply',
      30_000,
    );
    expect(await exists(path.join(outside, 'evil'))).toBe(false);
    expect(await readFile(path.join(outside, 'target.txt'), 'utf8')).toBe('precious');
  }, 60_000);
});
