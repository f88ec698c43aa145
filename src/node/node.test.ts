import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { NodeOpenError, WaveNode } from './node.js';
import type { ChangeEvent } from './options.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

const bytes = (s: string): Uint8Array => Buffer.from(s);

describe('WaveNode', () => {
  it('puts, gets, deletes and lists by prefix; survives a clean restart', async () => {
    let now = 1_000;
    const node = await WaveNode.open({ dataDir: dir, clock: () => now });
    const changes: ChangeEvent[] = [];
    node.on('change', (c) => changes.push(c));
    await node.put('a/1', bytes('one'));
    await node.put('a/2', bytes('two'));
    await node.put('b/1', bytes('three'));
    now = 900; // the clock went backwards: the delete must still win
    const del = await node.delete('a/2');
    expect(del!.meta.ts).toBeGreaterThan(1_000);
    expect(await node.delete('missing')).toBeNull();
    expect(Buffer.from(node.get('a/1')!).toString()).toBe('one');
    expect(node.get('a/2')).toBeUndefined();
    expect([...node.entries('a/')].map((e) => e.key)).toEqual(['a/1']);
    expect([...node.entries('a/', { tombstones: true })].map((e) => e.key)).toEqual(['a/1', 'a/2']);
    expect(changes.map((c) => [c.entry.key, c.source])).toEqual([
      ['a/1', 'local'],
      ['a/2', 'local'],
      ['b/1', 'local'],
      ['a/2', 'local'],
    ]);
    const { id, digest } = node;
    await node.close();
    const again = await WaveNode.open({ dataDir: dir });
    expect(again.id).toBe(id);
    expect(again.digest).toBe(digest);
    expect(again.recovery.fromSnapshot).toBe(true);
    const next = await again.put('c', bytes('x'));
    expect(next.meta.seq).toBe(5);
    await again.close();
  });

  it('merges remote entries, reports rejections and emits remote changes', async () => {
    const node = await WaveNode.open({
      dataDir: dir,
      clock: () => 5_000,
      admit: (e) => (e.key.startsWith('bad') ? 'bad prefix' : null),
    });
    const changes: ChangeEvent[] = [];
    node.on('change', (c) => changes.push(c));
    const planned: string[] = [];
    const merging = node.merge(
      [
        { key: 'x', value: bytes('1'), meta: { node: 42, seq: 1, ts: 4_000 } },
        { key: 'bad1', value: bytes('1'), meta: { node: 42, seq: 2, ts: 4_000 } },
        { key: 'x', value: bytes('0'), meta: { node: 42, seq: 3, ts: 3_000 } },
      ],
      42,
      (winners) => planned.push(...winners.map((e) => e.key)),
    );
    // The winners are known (and relayable) before they are durable; reads wait for durability.
    expect(planned).toEqual(['x']);
    expect(node.incomingVersion('x')).toEqual({ node: 42, seq: 1, ts: 4_000 });
    expect(node.get('x')).toBeUndefined();
    const res = await merging;
    expect(node.incomingVersion('x')).toBeUndefined();
    expect(res.applied.map((e) => e.key)).toEqual(['x']);
    expect(res.stale).toBe(1);
    expect(res.rejected.map((r) => r.reason)).toEqual(['admission']);
    expect(changes).toEqual([{ entry: res.applied[0], source: 'remote', from: 42 }]);
    expect(node.get('bad1')).toBeUndefined();
    await node.close();
  });

  it('leaves what came from a peer out of deltas for that peer, until it is rebuilt or written over', async () => {
    const node = await WaveNode.open({ dataDir: path.join(dir, 'src') });
    try {
      const all = { maxEntries: Infinity, maxBytes: Infinity };
      const keys = (skip: number): string[] =>
        node.state.delta(new Map(), { ...all, skipSource: skip }).entries.map((e) => e.key);
      await node.merge([{ key: 'from5', value: bytes('1'), meta: { node: 9, seq: 1, ts: 1 } }], 5);
      await node.merge([{ key: 'from6', value: bytes('1'), meta: { node: 9, seq: 2, ts: 1 } }], 6);
      expect(keys(node.state.sourceIdOf(5))).toEqual(['from6']);
      expect(keys(node.state.sourceIdOf(6))).toEqual(['from5']);
      expect(keys(node.state.sourceIdOf(7))).toEqual(['from5', 'from6']);
      // Peer 5 comes back rebuilt: it may have lost what it sent, so it gets it back.
      node.state.forgetPeer(5);
      expect(keys(node.state.sourceIdOf(5))).toEqual(['from5', 'from6']);
      // A newer write of the key (ours here) is not what peer 6 sent.
      await node.put('from6', bytes('2'));
      expect(keys(node.state.sourceIdOf(6))).toContain('from6');
    } finally {
      await node.close();
    }
  });

  it('never reissues a seq after the WAL is lost', async () => {
    const node = await WaveNode.open({ dataDir: dir });
    let last = 0;
    for (let i = 0; i < 10; i++) last = (await node.put(`k${i}`, bytes('v'))).meta.seq;
    node.abandon();
    await rm(path.join(dir, 'wal'), { recursive: true });
    const again = await WaveNode.open({ dataDir: dir });
    expect(again.state.size).toBe(0);
    const e = await again.put('k0', bytes('again'));
    expect(e.meta.seq).toBeGreaterThan(last);
    await again.close();
  });

  it('holds local writes on a fresh data dir with a chosen id until the seq is recovered', async () => {
    const node = await WaveNode.open({ dataDir: dir, id: 77 });
    expect(node.awaitingSeqRecovery).toBe(true);
    let done = false;
    const p = node.put('k', bytes('v')).then((e) => ((done = true), e));
    // The peer still holds this node's old write 7: merging it raises nextSeq.
    await node.merge([{ key: 'old', value: bytes('o'), meta: { node: 77, seq: 7, ts: 1 } }], 5);
    expect(done).toBe(false);
    node.seqRecovered();
    expect((await p).meta.seq).toBe(8);
    await node.close();
    const again = await WaveNode.open({ dataDir: dir, id: 77 });
    expect(again.awaitingSeqRecovery).toBe(false);
    await again.close();
  });

  it('refuses a data dir of another node and a bad id, with a clear message', async () => {
    const node = await WaveNode.open({ dataDir: dir, id: 5 });
    node.seqRecovered();
    await node.close();
    await expect(WaveNode.open({ dataDir: dir, id: 6 })).rejects.toThrow(NodeOpenError);
    await expect(WaveNode.open({ dataDir: dir, id: 0 })).rejects.toThrow(/1 to 4294967295/);
  });

  it('rejects an oversized local write without using a seq', async () => {
    const node = await WaveNode.open({ dataDir: dir, limits: { maxValueBytes: 4 } });
    await expect(node.put('k', bytes('12345'))).rejects.toThrow(/value-too-large/);
    expect((await node.put('k', bytes('1234'))).meta.seq).toBe(1);
    await node.close();
  });

  it('snapshots when the WAL passes its size threshold and recovers from it', async () => {
    const node = await WaveNode.open({ dataDir: dir, walMaxBytes: 4096 });
    for (let i = 0; i < 200; i++) await node.put(`k${i}`, bytes('x'.repeat(50)));
    await node.close();
    const again = await WaveNode.open({ dataDir: dir });
    expect(again.recovery.fromSnapshot).toBe(true);
    expect(again.state.size).toBe(200);
    await again.close();
  });

  it('tombstone GC clears only tombstones every member acknowledged', async () => {
    let now = 10_000;
    const node = await WaveNode.open({ dataDir: dir, id: 1, clock: () => now });
    node.seqRecovered();
    await node.addPeer(2);
    await node.put('k', bytes('v'));
    const t = (await node.delete('k'))!;
    now += 60_000;
    expect(await node.collectGarbage(1000)).toBe(0);
    node.state.peerAcks.set(2, new Map([[1, t.meta.seq]]));
    expect(await node.collectGarbage(1000)).toBe(1);
    expect(node.getEntry('k')).toBeUndefined();
    await node.close();
  });

  it('a member removed while its add is still being logged ends up removed (and back)', async () => {
    const node = await WaveNode.open({ dataDir: dir });
    // One turn, as a peer record and its forget record merged in one commit raise them.
    await Promise.all([node.addPeer(7), node.removePeer(7)]);
    expect(node.state.members.has(7)).toBe(false);
    await Promise.all([node.addPeer(8), node.removePeer(8), node.addPeer(8)]);
    expect(node.state.members.has(8)).toBe(true);
    await node.close();
    const again = await WaveNode.open({ dataDir: dir });
    expect([again.state.members.has(7), again.state.members.has(8)]).toEqual([false, true]);
    await again.close();
  });
});
