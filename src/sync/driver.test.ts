import { describe, expect, it } from 'vitest';
import type { Entry, NodeId } from '../core/index.js';
import { EventQueue, type SimEvent } from '../../test/sim/events.js';
import { FakeNode } from '../../test/helpers/fake-node.js';
import { SyncDriver } from './driver.js';
import { acksFromWire, fromWire, toWire, type SyncMessage, type SyncResponse } from './messages.js';
import type { PeerLink, Scheduler, SyncOptions, Transport, TransportHandler } from './types.js';

/**
 * One driver against a peer played by the test: every message the driver sends lands in
 * `outbox`, and the test answers by hand. Each ack rule of DESIGN §3 has a case here that
 * fails when the rule is taken out of the driver.
 */
class Harness {
  readonly q = new EventQueue();
  readonly outbox: SyncMessage[] = [];
  readonly heldSyncs: (() => void)[] = [];
  transportClosed = false;
  handler!: TransportHandler;
  readonly node: FakeNode;
  readonly driver: SyncDriver;

  constructor(
    opts: {
      fresh?: boolean;
      /** Group commits wait in `heldSyncs` until the test runs them (a slow disk). */
      holdSync?: boolean;
      admit?: (e: Entry) => string | null;
      sync?: Partial<SyncOptions>;
    } = {},
  ) {
    const sched: Scheduler = {
      now: () => 1_000_000 + this.q.now,
      setTimeout: (fn, ms) => this.q.schedule(ms, fn),
      clearTimeout: (h) => void ((h as SimEvent).cancelled = true),
    };
    this.node = new FakeNode(
      { id: 1, incarnation: 'inc-1', durable: [], awaitSeq: false },
      {
        scheduleSync: (fn) => (opts.holdSync ? this.heldSyncs.push(fn) : queueMicrotask(fn)),
        now: sched.now,
        onDurable: () => undefined,
        ...(opts.admit && { admit: opts.admit }),
      },
    );
    const transport: Transport = {
      start: (h) => void (this.handler = h),
      dial: () => undefined,
      hangUp: () => undefined,
      close: async () => void (this.transportClosed = true),
    };
    this.driver = new SyncDriver(
      this.node,
      transport,
      sched,
      { roundIntervalMs: 3_600_000, gcIntervalMs: 3_600_000, pageEntries: 3, ...opts.sync },
      opts.fresh ?? false,
    );
    this.driver.start();
  }

  /** Run due timers and let promise chains settle. */
  async settle(ms = 0): Promise<void> {
    const end = this.q.now + ms;
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      const ev = this.q.pop();
      if (ev === undefined) break;
      if (ev.time > end) {
        this.q.schedule(ev.time - this.q.now, ev.fn);
        break;
      }
      if (!ev.cancelled) ev.fn();
    }
    await new Promise<void>((r) => setImmediate(r));
  }

  linkUp(peer: NodeId): void {
    const link: PeerLink = {
      peer,
      incarnation: `inc-${peer}`,
      advertise: null,
      bufferedBytes: 0,
      send: (m) => (this.outbox.push(m), true),
    };
    this.handler.linkUp(link);
  }

  take<T extends SyncMessage['t']>(t: T): Extract<SyncMessage, { t: T }> {
    const i = this.outbox.findIndex((m) => m.t === t);
    if (i < 0) throw new Error(`no ${t} in outbox: ${this.outbox.map((m) => m.t).join(',')}`);
    return this.outbox.splice(i, 1)[0] as Extract<SyncMessage, { t: T }>;
  }

  async deliver(from: NodeId, m: SyncMessage): Promise<void> {
    this.handler.message(from, m);
    await this.settle();
  }
}

const e = (key: string, node: NodeId, seq: number, value: string | null = 'v'): Entry => ({
  key,
  value: value === null ? null : Buffer.from(value),
  meta: { node, seq, ts: 1_000_000 + seq },
});

/** A sync request from peer 2 (or `from`) with no entries, claiming `acks`. */
const syncFrom2 = (rid: number, acks: number[], from = 2): SyncMessage => ({
  t: 'sync',
  rid,
  from,
  incarnation: `inc-${from}`,
  acks,
  entries: [],
  complete: true,
  reset: false,
});

const res = (rid: number, acks: number[], entries: Entry[], last = true): SyncResponse => ({
  t: 'sync-res',
  rid,
  acks,
  digest: '0',
  entries: entries.map(toWire),
  last,
  merged: true,
  yours: 0,
});

describe('a disk that fails during a round', () => {
  it('a page whose merge fails while the next is awaited raises no unhandled rejection', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    const req = h.take('sync');
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      // The store can no longer log anything (a failed WAL refuses every write after).
      h.node.merge = () => Promise.reject(new Error('EIO: the WAL failed'));
      await h.deliver(2, res(req.rid, [2, 1], [e('a', 2, 1)], false));
      await h.settle(50); // the next page is asked for and never comes
      await new Promise((r) => setImmediate(r)); // Node reports an unhandled one by now
      expect(unhandled).toEqual([]);
      expect(h.node.state.ack(2)).toBe(0); // and nothing was adopted
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('ack rules (DESIGN §3)', () => {
  it('control: a complete, fully merged round raises acks to the responder’s', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    const req = h.take('sync');
    await h.deliver(2, res(req.rid, [2, 2], [e('a', 2, 1), e('b', 2, 2)]));
    expect(h.node.state.ack(2)).toBe(2);
  });

  it('rule 1: one rejected entry parks the acks', async () => {
    const h = new Harness({ admit: (x) => (x.key === 'bad' ? 'not allowed' : null) });
    h.linkUp(2);
    await h.settle();
    const req = h.take('sync');
    await h.deliver(2, res(req.rid, [2, 2], [e('good', 2, 1), e('bad', 2, 2)]));
    expect(h.node.state.get('good')).toBeDefined();
    expect(h.node.state.ack(2)).toBe(0);
  });

  it('rule 2: with paging, acks move only on the final page', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    const req = h.take('sync');
    await h.deliver(2, res(req.rid, [2, 4], [e('a', 2, 1), e('b', 2, 2)], false));
    const page = h.take('page');
    expect(page).toMatchObject({ round: req.rid, offset: 2 });
    expect(h.node.state.ack(2)).toBe(0); // page 1 merged, acks still parked
    await h.deliver(2, { t: 'error', rid: page.rid, message: 'gone' });
    expect(h.node.state.get('a') && h.node.state.get('b')).toBeDefined();
    expect(h.node.state.ack(2)).toBe(0);
  });

  it('rule 3: pushed entries never move acks', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    await h.deliver(2, { t: 'push', id: 1, entries: [e('x', 2, 3)].map(toWire) });
    expect(h.node.state.get('x')).toBeDefined();
    expect(h.node.state.ack(2)).toBe(0);
  });

  it('rule 4: every page of a response comes from the view of the first', async () => {
    const h = new Harness();
    for (let i = 0; i < 7; i++) await h.node.put(`k${i}`, Buffer.from('v'));
    h.linkUp(2);
    await h.settle();
    h.outbox.length = 0;
    await h.deliver(2, syncFrom2(10, []));
    const pages: SyncResponse[] = [h.take('sync-res')];
    // The state moves on between pages: a page must not show it, nor its acks claim it.
    for (let i = 7; i < 12; i++) await h.node.put(`k${i}`, Buffer.from('v'));
    while (!pages[pages.length - 1]!.last) {
      const offset = pages.reduce((n, p) => n + p.entries.length, 0);
      await h.deliver(2, { t: 'page', rid: 10 + pages.length, round: 10, offset });
      pages.push(h.take('sync-res'));
    }
    const got = pages.flatMap((p) =>
      p.entries.map(fromWire).filter((x) => !x.key.startsWith('__')),
    );
    expect(got.map((x) => x.key).sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6']);
    const claimed = acksFromWire(pages[pages.length - 1]!.acks).get(1)!;
    expect(pages.every((p) => acksFromWire(p.acks).get(1) === claimed)).toBe(true);
    expect(claimed).toBeLessThan(h.node.state.ack(1));
  });

  it('a repeated page request gets the same page, not the next one', async () => {
    const h = new Harness();
    for (let i = 0; i < 7; i++) await h.node.put(`k${i}`, Buffer.from('v'));
    h.linkUp(2);
    await h.settle();
    h.outbox.length = 0;
    const sync: SyncMessage = syncFrom2(5, []);
    await h.deliver(2, sync);
    await h.deliver(2, sync); // a duplicate request is dropped
    expect(h.outbox.filter((m) => m.t === 'sync-res')).toHaveLength(1);
    h.outbox.length = 0;
    await h.deliver(2, { t: 'page', rid: 6, round: 5, offset: 3 });
    await h.deliver(2, { t: 'page', rid: 7, round: 5, offset: 3 });
    const [a, b] = h.outbox.filter((m): m is SyncResponse => m.t === 'sync-res');
    expect(a!.entries).toEqual(b!.entries);
  });

  it('rule 5: a node on a fresh data dir adopts no requester’s acks before its first round', async () => {
    for (const fresh of [true, false]) {
      const h = new Harness({ fresh });
      h.linkUp(2);
      await h.settle();
      // We hold node 9's writes up to 70 (its acks can only be clipped to what we hold).
      await h.node.merge([{ key: 'n9', value: null, meta: { node: 9, seq: 70, ts: 1 } }], 2);
      h.outbox.length = 0;
      // A requester whose idea of our coverage is stale sends an empty "complete" delta.
      await h.deliver(2, syncFrom2(1, [2, 50, 9, 70]));
      expect(h.node.state.ack(9)).toBe(fresh ? 0 : 70);
    }
  });

  it('a peer with a new incarnation loses what we knew of its acks', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    const req = h.take('sync');
    await h.deliver(2, res(req.rid, [2, 1], [e('a', 2, 1)]));
    expect(h.node.state.peerAcks.get(2)?.get(2)).toBe(1);
    h.handler.linkDown(2, 'restart');
    h.handler.linkUp({
      peer: 2,
      incarnation: 'rebuilt',
      advertise: null,
      bufferedBytes: 0,
      send: () => true,
    });
    expect(h.node.state.peerAcks.get(2)).toBeUndefined();
  });
});

describe('source tags', () => {
  const sentKeys = (m: SyncResponse): string[] => m.entries.map((w) => fromWire(w).key);

  it('a peer whose link dropped gets back what it pushed (a relay may not have logged it)', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    // Relayed by 2 as it merged it: 2 may crash before its own commit of x.
    await h.deliver(2, { t: 'push', id: 1, entries: [e('x', 3, 1)].map(toWire) });
    h.outbox.length = 0;
    await h.deliver(2, syncFrom2(1, []));
    expect(sentKeys(h.take('sync-res'))).not.toContain('x'); // linked: not sent back
    h.handler.linkDown(2, 'process died');
    h.linkUp(2); // same incarnation: a restart, not a rebuild
    await h.settle();
    h.outbox.length = 0;
    await h.deliver(2, syncFrom2(2, []));
    expect(sentKeys(h.take('sync-res'))).toContain('x');
  });
});

describe('a store that can no longer log', () => {
  it('stops sync (its links drop): it may have relayed what it will never hold', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    h.node.merge = () => Promise.reject(new Error('WAL write failed'));
    await h.deliver(2, { t: 'push', id: 1, entries: [e('x', 3, 1)].map(toWire) });
    expect(h.transportClosed).toBe(true);
  });
});

describe('push relay (DESIGN §3)', () => {
  const pushedKeys = (h: Harness): string[] =>
    h.outbox
      .flatMap((m) => (m.t === 'push' ? m.entries.map((w) => fromWire(w).key) : []))
      .filter((k) => !k.startsWith('__peer/')); // the driver's own address record

  it('relays a peer’s winners before its own group commit, and its own writes only after', async () => {
    const h = new Harness({ holdSync: true });
    h.linkUp(2);
    h.linkUp(3);
    await h.settle();
    h.outbox.length = 0;
    // From 2: on to 3 at once, though our commit of it has not happened yet.
    await h.deliver(2, { t: 'push', id: 1, entries: [e('x', 2, 3)].map(toWire) });
    await h.settle(50);
    expect(h.node.state.get('x')).toBeUndefined(); // not durable here yet
    expect(pushedKeys(h)).toEqual(['x']);
    expect(h.outbox.every((m) => m.t !== 'push' || m.entries.length === 1)).toBe(true);
    // Our own write: nothing leaves until it is durable (its seq must never be seen first).
    h.outbox.length = 0;
    void h.node.put('mine', Buffer.from('v'));
    await h.settle(50);
    expect(pushedKeys(h)).toEqual([]);
    for (const run of h.heldSyncs.splice(0)) run();
    await h.settle(50);
    expect(h.node.state.get('x')).toBeDefined();
    // Sent once: the commit of x does not push it again; the local write goes to both peers.
    expect(pushedKeys(h).sort()).toEqual(['mine', 'mine']);
  });
});

describe('push confirmations', () => {
  const confirms = (h: Harness): number[] =>
    h.outbox.flatMap((m) => (m.t === 'push-ok' ? [m.id] : []));
  const sentKeys = (m: SyncResponse): string[] =>
    m.entries.map((w) => fromWire(w).key).filter((k) => !k.startsWith('__peer/'));

  it('confirm a push only once all of it merged and is durable', async () => {
    const h = new Harness({ holdSync: true, admit: (x) => (x.key === 'bad' ? 'no' : null) });
    h.linkUp(2);
    await h.settle();
    h.outbox.length = 0;
    await h.deliver(2, { t: 'push', id: 7, entries: [e('x', 2, 3)].map(toWire) });
    await h.settle(50);
    expect(confirms(h)).toEqual([]); // merged, not yet durable
    for (const run of h.heldSyncs.splice(0)) run();
    await h.settle(50);
    expect(confirms(h)).toEqual([7]);
    // One entry rejected: the frame is not held whole, so it is not confirmed.
    await h.deliver(2, { t: 'push', id: 8, entries: [e('y', 2, 4), e('bad', 2, 5)].map(toWire) });
    for (const run of h.heldSyncs.splice(0)) run();
    await h.settle(50);
    expect(confirms(h)).toEqual([7]);
  });

  it('leave what the peer confirmed out of the next round, but not a newer write of it', async () => {
    const h = new Harness();
    h.linkUp(2);
    await h.settle();
    h.outbox.length = 0;
    await h.node.put('a', Buffer.from('1'));
    await h.node.put('b', Buffer.from('1'));
    await h.settle(50);
    const pushes = h.outbox.filter((m) => m.t === 'push');
    expect(pushes.length).toBeGreaterThan(0);
    for (const p of pushes) await h.deliver(2, { t: 'push-ok', id: p.id });
    await h.node.put('b', Buffer.from('2')); // after the confirmation: 2 lacks this one
    h.outbox.length = 0;
    await h.deliver(2, syncFrom2(1, []));
    expect(sentKeys(h.take('sync-res'))).toEqual(['b']);
    // A dropped link forgets the confirmations (as it does source tags).
    h.handler.linkDown(2, 'gone');
    h.linkUp(2);
    await h.settle();
    h.outbox.length = 0;
    await h.deliver(2, syncFrom2(2, []));
    expect(sentKeys(h.take('sync-res')).sort()).toEqual(['a', 'b']);
  });

  it('count a round as delivered once the peer confirms it, or merged our request', async () => {
    const h = new Harness();
    await h.node.put('a', Buffer.from('1'));
    await h.node.put('b', Buffer.from('1'));
    h.linkUp(2);
    await h.settle();
    // A new link: we do not know what 2 holds, so the first request carries nothing (2's own
    // round pulls it); its answer tells us 2's acks.
    const first = h.take('sync');
    expect(first.entries).toEqual([]);
    await h.deliver(2, res(first.rid, [], [e('z', 2, 1)]));
    expect(h.take('sync-ok').round).toBe(first.rid); // we confirm its response to us
    // The next round carries a and b; the peer answers only once it merged them (merged: true).
    // Up to the next round (an hour here), in steps shorter than a request's timeout.
    for (let i = 0; i < 1000 && !h.outbox.some((m) => m.t === 'sync'); i++) await h.settle(5_000);
    const req = h.take('sync');
    expect(req.entries.map((w) => fromWire(w).key)).toContain('a');
    await h.deliver(2, res(req.rid, [], []));
    h.outbox.length = 0;
    await h.deliver(2, syncFrom2(1, []));
    expect(sentKeys(h.take('sync-res'))).toEqual([]);
    // Responder side: what a response carried counts once the requester confirms that round.
    await h.node.put('c', Buffer.from('1'));
    await h.deliver(2, syncFrom2(2, []));
    expect(sentKeys(h.take('sync-res'))).toEqual(['c']);
    await h.deliver(2, syncFrom2(3, []));
    expect(sentKeys(h.take('sync-res'))).toEqual(['c']); // not confirmed: sent again
    await h.deliver(2, { t: 'sync-ok', round: 3 });
    await h.deliver(2, syncFrom2(4, []));
    expect(sentKeys(h.take('sync-res'))).toEqual([]);
  });

  it('mark a relayed write the next node confirmed before our own commit of it ended', async () => {
    const h = new Harness({ holdSync: true });
    h.linkUp(2);
    h.linkUp(3);
    await h.settle();
    for (const run of h.heldSyncs.splice(0)) run();
    await h.settle(50);
    h.outbox.length = 0;
    // From 2, relayed on to 3 before our commit; 3 confirms while the commit still runs.
    await h.deliver(2, { t: 'push', id: 1, entries: [e('x', 2, 3)].map(toWire) });
    await h.settle(50);
    const relayed = h.take('push');
    await h.deliver(3, { t: 'push-ok', id: relayed.id });
    for (const run of h.heldSyncs.splice(0)) run();
    await h.settle(200);
    expect(h.node.state.get('x')).toBeDefined();
    h.outbox.length = 0;
    await h.deliver(3, syncFrom2(1, [], 3));
    expect(sentKeys(h.take('sync-res'))).toEqual([]);
  });
});

describe('serve budgets', () => {
  it('answer a peer asking for the same block again and again "not here" once its budget is spent', async () => {
    const budget = {
      burstBytes: 3 * 1024,
      refillBytesPerSec: 0,
      perRequestByteFactor: 0,
      minRequestBytes: 0,
    };
    const h = new Harness({ sync: { blockBudget: budget } });
    h.driver.serveBlocks(async () => ({ data: Buffer.alloc(1024, 7) }));
    h.linkUp(2);
    await h.settle();
    h.outbox.length = 0;
    const ask = { t: 'block', key: 'k', node: 2, seq: 1, index: 0, hash: 'a'.repeat(64) } as const;
    for (let rid = 1; rid <= 5; rid++) await h.deliver(2, { ...ask, rid });
    const answers = h.outbox
      .filter((m) => m.t === 'block-res')
      .map((m) => (m as { data: Uint8Array | null }).data);
    expect(answers.map((d) => d?.length ?? null)).toEqual([1024, 1024, 1024, null, null]);
  });

  it('answer reset rounds "busy" once a peer’s round budget is spent', async () => {
    const budget = {
      burstBytes: 100,
      refillBytesPerSec: 0,
      perRequestByteFactor: 0,
      minRequestBytes: 60,
    };
    const h = new Harness({ sync: { serveBudget: budget } });
    h.linkUp(2);
    await h.settle();
    h.outbox.length = 0;
    for (let rid = 1; rid <= 4; rid++) await h.deliver(2, syncFrom2(rid, []));
    expect(h.outbox.filter((m) => m.t === 'error').length).toBeGreaterThan(0);
    expect(h.driver.counters.throttled).toBeGreaterThan(0);
  });
});
