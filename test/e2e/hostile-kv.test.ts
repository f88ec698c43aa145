import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/core/index.js';
import { encodeRecord } from '../../src/filesync/record.js';
import { forgottenKey, peerKey } from '../../src/sync/index.js';
import { EvilPeer } from '../helpers/evil-peer.js';
import { junkRecord } from '../helpers/records.js';
import { waitFor } from '../helpers/tmp.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, FsNode } from './cluster.js';

/**
 * A member gone hostile, speaking the real wire protocol to real nodes: it may not write in
 * another node's name where that node can tell, forge coverage, or cut members apart.
 */
const t = tempNodes('filesync-hostile-kv-', true);
const nodes = t.nodes;
const peers: EvilPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

interface Status {
  node: { id: number; nextSeq: number; lastSeq: number; members: number[]; keys: number };
  acks: Record<string, number>;
  peers: { id: number; connected: boolean; coversOurs: number; rounds: number }[];
  counters: Record<string, number>;
}
const status = async (n: FsNode): Promise<Status> =>
  (await (await fetch(`http://${n.advertise}/status`)).json()) as Status;

/** Two honest nodes, b dialling a, linked; and an attacker connected to a. */
async function pair(): Promise<{ a: FsNode; b: FsNode; evil: EvilPeer; aId: number; bId: number }> {
  const a = new FsNode(path.join(t.dir, 'a'), ['--no-discover']);
  const b = new FsNode(path.join(t.dir, 'b'), ['--no-discover']);
  nodes.push(a, b);
  await a.start();
  await b.start(['--peers', a.advertise]);
  const [aId, bId] = [(await status(a)).node.id, (await status(b)).node.id];
  await waitFor(
    async () => (await status(a)).peers.some((p) => p.id === bId && p.connected),
    'b to link with a',
  );
  const evil = await EvilPeer.connect(a.advertise);
  peers.push(evil);
  return { a, b, evil, aId, bId };
}

const entry = (key: string, value: Uint8Array | null, node: number, seq: number): Entry => ({
  key,
  value,
  meta: { node, seq, ts: Date.now() },
});

describe('a hostile member (real nodes, real wire protocol)', () => {
  it('cannot brick a node by writing in its name with seq 2^53-1: later writes still replicate, and after a kill -9 it starts', async () => {
    const { a, b, evil, aId } = await pair();
    evil.push([entry('__file/forged.txt', junkRecord(), aId, 2 ** 53 - 1)]);
    await writeFile(path.join(a.dir, 'after.txt'), 'written after the forgery');
    await converge([a, b], 'a later write of a to reach b');
    const s = await status(a);
    expect(s.node.nextSeq).toBeLessThan(2 ** 40);
    expect(s.counters.rejected).toBeGreaterThan(0);
    await a.stop('SIGKILL');
    await a.start(['--port', a.advertise.split(':').pop()!]); // where b dials it
    await writeFile(path.join(a.dir, 'after-restart.txt'), 'still a working node');
    await converge([a, b], 'a write after the restart to reach b');
  }, 60_000);

  it('cannot make a node adopt forged acks (2^53-1 for every origin), nor keep them as what it covers', async () => {
    const { a, b, evil, aId, bId } = await pair();
    const forged = [aId, 2 ** 53 - 1, bId, 2 ** 53 - 1, evil.id, 2 ** 53 - 1];
    evil.answerRounds(() => ({ acks: forged }));
    // Rounds with the attacker complete: a takes its answers (acks included).
    await waitFor(
      async () => ((await status(a)).peers.find((p) => p.id === evil.id)?.rounds ?? 0) >= 2,
      'two rounds of a with the attacker',
    );
    await writeFile(path.join(b.dir, 'from-b.txt'), 'b writes');
    await converge([a, b], 'b’s write to reach a');
    const [sa, sb] = [await status(a), await status(b)];
    expect(sa.acks[String(aId)] ?? 0).toBeLessThanOrEqual(sa.node.lastSeq);
    expect(sa.acks[String(bId)] ?? 0).toBeLessThanOrEqual(sb.node.lastSeq);
    expect(sa.acks[String(evil.id)] ?? 0).toBe(0);
    const evilRow = sa.peers.find((p) => p.id === evil.id);
    expect(evilRow?.coversOurs ?? 0).toBeLessThanOrEqual(sa.node.lastSeq);
    // What a passes on to b is clipped as well.
    expect(sb.acks[String(aId)] ?? 0).toBeLessThanOrEqual(sa.node.lastSeq);
  }, 60_000);

  it('cannot cut two members apart: another node’s peer record is refused, a forgery in its name is written over, a forget record for a live peer is ignored', async () => {
    const { a, b, evil, bId } = await pair();
    const ts = Date.now() + 60_000;
    evil.push([
      { key: peerKey(bId), value: null, meta: { node: evil.id, seq: 1, ts } },
      { key: peerKey(bId), value: null, meta: { node: bId, seq: 10_000, ts: ts + 1 } },
      {
        key: forgottenKey(bId),
        value: Buffer.from('{"incarnation":null}'),
        meta: { node: evil.id, seq: 2, ts },
      },
    ]);
    // a took the forgery in b's name (it cannot tell); b refuses it and writes over it.
    await waitFor(
      async () => ((await status(a)).counters.rejected ?? 0) > 0,
      'a to refuse the peer record written by the attacker',
    );
    await writeFile(path.join(b.dir, 'still-linked.txt'), 'b and a still sync');
    await converge([a, b], 'a and b to keep syncing');
    const sa = await status(a);
    expect(sa.peers.find((p) => p.id === bId)?.connected).toBe(true);
    expect(sa.node.members).toContain(bId);
  }, 60_000);

  it('cannot make a node keep junk: malformed peer records, dir records with block lists and over-long names are refused and logged once', async () => {
    const { a, b, evil } = await pair();
    const before = await status(a);
    const h = 'c'.repeat(64);
    const fat = (i: number): Uint8Array =>
      encodeRecord({
        type: 'dir',
        size: 0,
        mtimeMs: i,
        mode: 0o755,
        hash: '',
        blocks: Array.from({ length: 14_000 }, () => h),
        target: null,
        prev: null,
        history: [],
      });
    let seq = 1;
    for (let i = 0; i < 20; i++) {
      evil.push([
        entry(`__peer/junk-${i}`, new Uint8Array(900_000), evil.id, seq++),
        entry(`__file/fat-dir-${i}`, fat(i), evil.id, seq++),
        entry(`__file/${'n'.repeat(300)}-${i}`, junkRecord(), evil.id, seq++),
      ]);
    }
    await waitFor(
      async () => ((await status(a)).counters.rejected ?? 0) >= 60,
      'a to refuse all 60 entries',
    );
    await writeFile(path.join(b.dir, 'honest.txt'), 'still syncing');
    await converge([a, b], 'an honest write after the junk');
    const after = await status(a);
    expect(after.node.keys - before.node.keys).toBeLessThanOrEqual(2); // honest.txt, its dir none
    const warnings = a.stderr.split('\n').filter((l) => l.includes('entry rejected'));
    expect(warnings.length).toBeLessThanOrEqual(3); // one per reason, not one per entry
  }, 60_000);

  it('cannot forge a log line with a newline in a file name', async () => {
    const { a, evil } = await pair();
    const name = 'x\n2026-01-01T00:00:00.000Z ERROR [cli] FORGED';
    evil.push([entry(`__file/${name}`, junkRecord(), evil.id, 1)]);
    // The content is never served: the node says so in its log, about that name.
    await waitFor(() => a.stderr.includes('FORGED'), 'a log line naming the file', 60_000);
    for (const line of a.stderr.split('\n'))
      expect(line.startsWith('2026-01-01T00:00:00.000Z'), line).toBe(false);
  }, 60_000);

  it('cannot make a node send far more than it is asked for (reset rounds and every bucket, in a loop)', async () => {
    const { a, b, evil } = await pair();
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        writeFile(path.join(a.dir, `f${i}.txt`), `file ${i} `.repeat(10)),
      ),
    );
    await converge([a, b], 'the 2000 files on both', 60_000);
    const floodMs = 5000;
    const start = evil.bytesIn;
    const flood = evil.floodRequests();
    await writeFile(path.join(b.dir, 'honest.txt'), 'honest edit during the flood');
    await converge([a, b], 'an honest edit during the flood');
    const end = Date.now() + floodMs;
    await waitFor(() => Date.now() >= end, 'the flood to have run its time', floodMs + 5000);
    flood.stop();
    const got = evil.bytesIn - start;
    const sentBytes = flood.sentBytes();
    const budget = 16 * 2 ** 20 + (floodMs / 1000 + 5) * 2 * 2 ** 20 + 10 * sentBytes + 2 ** 20;
    expect(got).toBeLessThanOrEqual(budget);
    expect((await status(a)).counters.throttled).toBeGreaterThan(0);
  }, 120_000);
});
