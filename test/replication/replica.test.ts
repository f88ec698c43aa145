import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Packr } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Replica, type ReplicaOptions } from '../../src/replica/index.js';
import { PROTOCOL_VERSION, TransportConfigError } from '../../src/transport/index.js';
import { SCAVENGE_EVERY_BYTES, scavenger } from '../../src/transport/scavenger.js';
import { dialLink, testDevice } from '../helpers/evil-peer.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
let dir: string;
let cleanup: () => Promise<void>;
const running = new Set<Replica>();

beforeEach(async () => ({ dir, cleanup } = await tempDir('wavekv-repl-')));
afterEach(async () => {
  for (const r of running) await r.close().catch(() => undefined);
  running.clear();
  await cleanup();
});

async function start(name: string, opts: Partial<ReplicaOptions> = {}): Promise<Replica> {
  const r = await Replica.start({
    dataDir: path.join(dir, name),
    port: 0,
    sync: { roundIntervalMs: 200, requestTimeoutMs: 2000 },
    transport: { reconnectBaseMs: 50, reconnectMaxMs: 500 },
    ...opts,
  });
  running.add(r);
  return r;
}

async function stop(r: Replica): Promise<void> {
  running.delete(r);
  await r.close();
}

const userKeys = (r: Replica): string[] =>
  [...r.node.entries('k/')].map((e) => `${e.key}=${Buffer.from(e.value!).toString()}`).sort();

async function converged(rs: Replica[]): Promise<void> {
  await waitFor(
    () => rs.every((r) => r.node.digest === rs[0]!.node.digest),
    'digests to agree',
    20_000,
  );
}

describe('replication over WebSocket on loopback', () => {
  it('a chain 2→1, 3→2 becomes a full mesh and converges; survives node 2 stopping; a restarted node catches up', async () => {
    const r1 = await start('1');
    const r2 = await start('2', { peers: [r1.transport.advertise] });
    const r3 = await start('3', { peers: [r2.transport.advertise] });
    await waitFor(
      () => [r1, r2, r3].every((r) => r.driver.linkedPeers.length === 2),
      'a full mesh',
      20_000,
    );
    await Promise.all([r1.node.put('k/a', Buffer.from('1')), r2.node.put('k/b', Buffer.from('2'))]);
    await r3.node.put('k/c', Buffer.from('3'));
    await converged([r1, r2, r3]);
    expect(userKeys(r3)).toEqual(['k/a=1', 'k/b=2', 'k/c=3']);

    // Node 2 (the only seed of 3) stops: 1 and 3 found each other, so writes still flow.
    await stop(r2);
    await r1.node.put('k/d', Buffer.from('4'));
    await waitFor(() => r3.node.get('k/d') !== undefined, 'k/d to reach node 3 without node 2');

    // Node 3 stops, misses writes, restarts on its data dir and catches up.
    const dir3 = path.join(dir, '3');
    await stop(r3);
    for (let i = 0; i < 50; i++) await r1.node.put(`k/later${i}`, Buffer.from(String(i)));
    await r1.node.delete('k/a');
    const r3b = await start('3b', { dataDir: dir3, peers: [r1.transport.advertise] });
    await converged([r1, r3b]);
    expect(r3b.node.get('k/a')).toBeUndefined();
    expect(userKeys(r3b)).toHaveLength(53);
  });

  it('blocks of every size cross both ways intact, and a lender hears once its block went out', async () => {
    const r1 = await start('1');
    const r2 = await start('2', { peers: [r1.transport.advertise] });
    await waitFor(() => r2.driver.linkedPeers.length === 1, 'the link');
    // Large blocks go out uncopied (msgpack head, then the bytes); a client's frames are masked.
    const blocks = [0, 100, 70_000, 1024 * 1024].map((n) => randomBytes(n));
    const given = new Map<number, number>();
    for (const r of [r1, r2])
      r.driver.serveBlocks((_peer, ref) => {
        const data = Buffer.from(blocks[ref.index]!); // the lender's own buffer
        return Promise.resolve({
          data,
          sent: () => {
            given.set(ref.seq, (given.get(ref.seq) ?? 0) + 1);
            expect(data.equals(blocks[ref.index]!)).toBe(true); // not written over (masking)
          },
        });
      });
    let seq = 0;
    for (const [from, to] of [
      [r1, r2],
      [r2, r1],
    ] as const)
      for (const index of blocks.keys()) {
        const ref = { key: 'k', node: 1, seq: ++seq, index, hash: 'h'.repeat(64) };
        const got = await to.driver.fetchBlock(from.node.id, ref);
        expect(Buffer.from(got!).equals(blocks[index]!)).toBe(true);
      }
    await waitFor(() => given.size === seq, 'every block given back');
    expect([...given.values()].every((n) => n === 1)).toBe(true);
  });

  it('asks for a young-generation GC per SCAVENGE_EVERY_BYTES of frames', async () => {
    const r1 = await start('1');
    const r2 = await start('2', { peers: [r1.transport.advertise] });
    await waitFor(() => r2.driver.linkedPeers.length === 1, 'the link');
    const block = randomBytes(1024 * 1024);
    r1.driver.serveBlocks(() => Promise.resolve({ data: block }));
    const asked: string[] = [];
    const g = globalThis as { gc?: unknown };
    const had = g.gc;
    g.gc = (o: { type: string }) => asked.push(o.type); // what node --expose-gc installs
    try {
      const before = scavenger.scavenges;
      const blocks = (3 * SCAVENGE_EVERY_BYTES) / block.length;
      for (let i = 0; i < blocks; i++)
        await r2.driver.fetchBlock(r1.node.id, {
          key: 'k',
          node: 1,
          seq: 1,
          index: i,
          hash: 'h'.repeat(64),
        });
      // Out on r1 and in on r2, one process: twice the bytes, at least 5 scavenges.
      expect(scavenger.scavenges - before).toBeGreaterThanOrEqual(5);
      expect(asked.length).toBeGreaterThanOrEqual(5);
      expect(new Set(asked)).toEqual(new Set(['minor']));
    } finally {
      g.gc = had;
    }
  });

  it('a wrong secret is refused and receives no data', async () => {
    const r1 = await start('1', { secret: 'right' });
    await r1.node.put('k/secret', Buffer.from('x'));
    const bad = await start('bad', { secret: 'wrong', peers: [r1.transport.advertise] });
    await waitFor(() => r1.transport.counters.authFailures > 0, 'the auth failure');
    expect(bad.driver.linkedPeers).toEqual([]);
    expect(bad.node.get('k/secret')).toBeUndefined();
    const good = await start('good', { secret: 'right', peers: [r1.transport.advertise] });
    await waitFor(() => good.node.get('k/secret') !== undefined, 'the right secret to get data');
    // /status needs the secret as a bearer token (plain HTTP, this machine only).
    const url = `http://${r1.transport.advertise}/status`;
    expect((await fetch(url)).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: 'Bearer right' } });
    expect(ok.status).toBe(200);
  });

  it('garbage, truncated, oversized and wrong-protocol frames close only that connection', async () => {
    const r1 = await start('1', { transport: { maxFrameBytes: 64 * 1024, reconnectBaseMs: 50 } });
    const r2 = await start('2', { peers: [r1.transport.advertise] });
    await waitFor(() => r1.driver.linkedPeers.length === 1, 'the good link');

    const device = await testDevice();
    const attempt = async (
      frames: (Buffer | string)[],
      protocolOffset = 0,
    ): Promise<{ code: number; reason: string; bye?: string }> => {
      const r = await dialLink(r1.transport.advertise, {
        id: 999,
        incarnation: 'x',
        device,
        protocol: PROTOCOL_VERSION + protocolOffset,
      });
      if (!('ws' in r)) return { code: r.status, reason: r.reason };
      const ws = r.ws;
      let bye: string | undefined;
      ws.on('message', (d) => {
        const m = packr.unpack(d as Buffer) as { t?: string; reason?: string };
        if (m.t === 'bye') bye = m.reason;
      });
      const closed = new Promise<[number, Buffer]>((res) =>
        ws.once('close', (c, why) => res([c, why])),
      );
      for (const f of frames) ws.send(f);
      const [code, reason] = await closed;
      return { code, reason: reason.toString(), ...(bye !== undefined && { bye }) };
    };

    expect((await attempt([Buffer.from([0xc1, 0xff, 0x00])])).code).toBe(4002);
    const push = packr.pack({ t: 'push', id: 1, entries: [] });
    expect((await attempt([push.subarray(0, 5)])).code).toBe(4002);
    expect((await attempt([Buffer.alloc(100 * 1024, 1)])).code).toBe(1009);
    expect((await attempt(['text frame'])).code).toBe(4002);
    const wrong = await attempt([], 94);
    expect(wrong.code).toBe(403);
    expect(wrong.reason).toMatch(/protocol 99 is not supported/);
    // A node of before TLS links (protocol 4) dials in plain WebSocket: one clear refusal.
    const old = new WebSocket(`ws://${r1.transport.advertise}/sync`);
    const oldStatus = await new Promise<number>((res) =>
      old.on('unexpected-response', (_req, resp) => res(resp.statusCode ?? 0)),
    );
    expect(oldStatus).toBe(426);
    const badMsg = await attempt([packr.pack({ t: 'push', id: 1, entries: [['k', 1, 2, 3]] })]);
    expect(badMsg.code).toBe(4002);
    // A block's raw bytes must be exactly what their block-head announced, and only after one.
    const head = packr.pack({ t: 'block-head', rid: 1, bytes: 1000 });
    const short = await attempt([head, Buffer.alloc(999)]);
    expect(short.code).toBe(4002);
    expect(short.bye).toMatch(/block-head announced 1000 bytes, got 999/);
    const huge = packr.pack({ t: 'block-head', rid: 1, bytes: 2 * 1024 * 1024 });
    expect((await attempt([huge])).bye).toMatch(/malformed block-head/);
    expect(r1.transport.counters.badFrames).toBeGreaterThanOrEqual(6);

    // The good peer was never disturbed.
    await r1.node.put('k/after', Buffer.from('ok'));
    await waitFor(() => r2.node.get('k/after') !== undefined, 'data to flow on the good link');
    expect(r1.driver.linkedPeers).toEqual([r2.node.id]);
  });

  it('a kept-alive HTTP client outlives the handshake deadline (it is not a pending peer)', async () => {
    const r1 = await start('1', { transport: { handshakeTimeoutMs: 200 } });
    const url = `http://${r1.transport.advertise}/status`;
    // fetch keeps its connection alive between calls: five deadlines' worth of polling on it.
    const t0 = Date.now();
    while (Date.now() - t0 < 1000) expect((await fetch(url)).status).toBe(200);
  });

  it('/status and /metrics answer', async () => {
    const r1 = await start('1');
    const r2 = await start('2', { peers: [r1.transport.advertise] });
    await r2.node.put('k/x', Buffer.from('1'));
    await converged([r1, r2]);
    await waitFor(
      () =>
        r1
          .status()
          .peers.some((p) => p.id === r2.node.id && p.coversOurs === r1.node.state.ack(r1.node.id)),
      'node 2 to cover node 1’s writes',
    );
    const status = (await (await fetch(`http://${r1.transport.advertise}/status`)).json()) as {
      node: { id: number; digest: string };
      peers: { id: number; connected: boolean }[];
    };
    expect(status.node.id).toBe(r1.node.id);
    expect(status.node.digest).toBe(r2.node.digest);
    expect(status.peers).toContainEqual(
      expect.objectContaining({ id: r2.node.id, connected: true }),
    );
    const metrics = await (await fetch(`http://${r1.transport.advertise}/metrics`)).text();
    expect(metrics).toMatch(/^wavekv_keys\{node="\d+"\} \d+$/m);
    expect(metrics).toMatch(/^wavekv_rounds_ok_total\{node="\d+"\} \d+$/m);
    expect((await fetch(`http://${r1.transport.advertise}/nope`)).status).toBe(404);
  });

  it('refuses to bind a non-loopback address without a secret', async () => {
    await expect(start('x', { host: '0.0.0.0' })).rejects.toThrow(TransportConfigError);
  });
});
