import { describe, expect, it } from 'vitest';
import type { Entry, NodeId } from '../core/index.js';
import { FakeNode } from '../../test/helpers/fake-node.js';
import type { ServeBudgetOptions } from './budget.js';
import { DEFAULT_SYNC_OPTIONS } from './types.js';
import { BUCKET_COUNT, fromWire, toWire, type SyncMessage, type SyncRequest } from './messages.js';
import { Responder, type ResponderHost } from './respond.js';

const PEER: NodeId = 2;

/** A responder on a FakeNode whose writes are durable at once; what it sends lands in `sent`. */
async function setup(opts: { serveBudget?: ServeBudgetOptions; known?: boolean } = {}) {
  let now = 1_000_000;
  const node = new FakeNode(
    { id: 1, incarnation: 'inc-1', durable: [], awaitSeq: false },
    { scheduleSync: (fn) => queueMicrotask(fn), now: () => now, onDurable: () => undefined },
  );
  const sent: SyncMessage[] = [];
  const counters = { entriesSent: 0, resets: 0, throttled: 0 };
  const host: ResponderHost = {
    node,
    counters,
    send: (_peer, m) => (sent.push(m), true),
    connected: () => true,
    merge: async (peer, entries: Entry[]) =>
      (await node.merge(entries, peer)).rejected.length === 0,
    noteIncarnation: () => undefined,
    coverageKnown: () => opts.known ?? true,
    now: () => now,
  };
  const r = new Responder(host, {
    ...DEFAULT_SYNC_OPTIONS,
    pageEntries: 2,
    ...(opts.serveBudget !== undefined && { serveBudget: opts.serveBudget }),
  });
  for (let i = 0; i < 5; i++) await node.put(`k${i}`, new Uint8Array([i]));
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
  };
  return { node, r, sent, counters, settle, tick: (ms: number) => (now += ms) };
}

const syncReq = (rid: number, over: Partial<SyncRequest> = {}): SyncRequest => ({
  t: 'sync',
  rid,
  from: PEER,
  incarnation: 'inc-2',
  acks: [],
  entries: [],
  complete: true,
  reset: false,
  ...over,
});

describe('Responder', () => {
  it('answers a sync request page by page from one view, and a repeated request not at all', async () => {
    const { r, sent, counters, settle, node } = await setup();
    r.onRequest(PEER, syncReq(7));
    await settle();
    expect(sent.map((m) => m.t)).toEqual(['sync-res']);
    const first = sent[0] as Extract<SyncMessage, { t: 'sync-res' }>;
    expect(first.entries).toHaveLength(2);
    await node.put('k9', new Uint8Array([9])); // after the view: not in this answer
    r.onRequest(PEER, { t: 'page', rid: 8, round: 7, offset: 2 });
    r.onRequest(PEER, { t: 'page', rid: 9, round: 7, offset: 4 });
    const keys = sent.flatMap((m) => ('entries' in m ? m.entries.map((e) => fromWire(e).key) : []));
    expect(keys.sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    expect(counters.entriesSent).toBe(5);
    r.onRequest(PEER, syncReq(7)); // repeated
    await settle();
    expect(sent).toHaveLength(3);
  });

  it('refuses a request in another node’s name, and adopts acks only once coverage is known', async () => {
    const { r, sent, settle, node } = await setup({ known: false });
    r.onRequest(PEER, syncReq(1, { from: 3 }));
    await settle();
    expect(sent[0]).toMatchObject({ t: 'error', rid: 1 });
    expect((sent[0] as { message: string }).message).toMatch(/claims to be from 3/);
    // Three writes of the peer's own and its claim to cover them: a complete delta.
    const mine = fromWire(toWire(node.state.get('k1')!));
    const theirs = [1, 2, 3].map((seq) =>
      toWire({ ...mine, key: `p${seq}`, meta: { ...mine.meta, node: PEER, seq } }),
    );
    const req = syncReq(2, { acks: [PEER, 3], entries: theirs });
    r.onRequest(PEER, req);
    await settle();
    expect(node.state.get('p3')).toBeDefined();
    expect(node.state.ack(PEER)).toBe(0); // not adopted: our coverage is unknown
    const known = await setup({ known: true });
    known.r.onRequest(PEER, req);
    await known.settle();
    expect(known.node.state.ack(PEER)).toBe(3);
  });

  it('tells a peer over its serve budget to come back later, and counts it', async () => {
    const { r, sent, counters } = await setup({
      serveBudget: {
        burstBytes: 1024,
        refillBytesPerSec: 0,
        perRequestByteFactor: 0,
        minRequestBytes: 1024,
      },
    });
    r.onRequest(PEER, { t: 'buckets', rid: 1 });
    r.onRequest(PEER, { t: 'buckets', rid: 2 });
    const busy = sent.filter((m) => m.t === 'error');
    expect(busy.length).toBeGreaterThan(0);
    expect((busy[0] as { message: string }).message).toMatch(/busy/);
    expect(counters.throttled).toBe(busy.length);
  });

  it('swaps the entries of the buckets asked for: merges the peer’s, answers with its own', async () => {
    const { r, sent, settle, node } = await setup();
    const mine = fromWire(toWire(node.state.get('k1')!));
    const theirs: Entry = { ...mine, key: 'new', meta: { ...mine.meta, node: PEER, seq: 1 } };
    const all = Array.from({ length: BUCKET_COUNT }, (_, b) => b);
    r.onRequest(PEER, { t: 'bucket-entries', rid: 4, buckets: all, entries: [toWire(theirs)] });
    await settle();
    expect(node.state.get('new')).toBeDefined();
    const res = sent.find((m) => m.t === 'bucket-entries-res');
    expect(res).toMatchObject({ t: 'bucket-entries-res', rid: 4 });
    const keys = (res as { entries: Parameters<typeof fromWire>[0][] }).entries.map(
      (e) => fromWire(e).key,
    );
    expect(keys).toContain('k0'); // a page of them (pageEntries 2)
    expect(keys).toHaveLength(2);
  });
});
