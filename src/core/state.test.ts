import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Digest } from './digest.js';
import { DEFAULT_LIMITS } from './limits.js';
import { compareMeta } from './order.js';
import { MAX_HELD_MARKS_PER_PEER, PeerMarks } from './peer-marks.js';
import { State } from './state.js';
import type { Entry, NodeId } from './types.js';

const arbMeta = fc.record({
  node: fc.integer({ min: 1, max: 5 }),
  seq: fc.integer({ min: 1, max: 40 }),
  ts: fc.integer({ min: 1000, max: 1010 }),
});
const arbEntry: fc.Arbitrary<Entry> = fc.record({
  key: fc.constantFrom('a', 'b', 'c', 'd', 'é', 'k/long/key'),
  value: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }),
  meta: arbMeta,
});

/** (node, seq) names one write: make generated entries respect that. */
function uniqueWrites(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const id = `${e.meta.node}:${e.meta.seq}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function build(entries: readonly Entry[], self: NodeId = 99): State {
  const s = new State(self);
  for (const entry of entries) s.apply({ type: 'set', entry });
  return s;
}

function snapshotOf(s: State): Array<[string, string]> {
  return [...s.entries()]
    .map((e): [string, string] => [e.key, JSON.stringify([e.meta, e.value ? [...e.value] : null])])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

function fullDigest(s: State): string {
  const d = new Digest();
  for (const e of s.entries()) d.toggle(e);
  return d.value;
}

describe('merge', () => {
  it('is commutative, associative and idempotent over any interleaving', () => {
    fc.assert(
      fc.property(
        fc.array(arbEntry, { maxLength: 40 }).map(uniqueWrites),
        fc.infiniteStream(fc.nat()),
        (entries, rnd) => {
          const a = build(entries);
          // Any permutation, with every entry duplicated at a random point, and merged in
          // two halves into separate states then combined (associativity).
          const shuffled = [...entries, ...entries];
          const it = rnd[Symbol.iterator]();
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = it.next().value % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          const half = Math.floor(shuffled.length / 2);
          const left = build(shuffled.slice(0, half));
          const right = build(shuffled.slice(half));
          const combined = build([...right.entries(), ...left.entries()]);
          const b = build(shuffled);
          expect(snapshotOf(b)).toEqual(snapshotOf(a));
          expect(b.digest).toBe(a.digest);
          expect(snapshotOf(combined)).toEqual(snapshotOf(a));
          expect(combined.digest).toBe(a.digest);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the LWW-greatest version of every key', () => {
    fc.assert(
      fc.property(fc.array(arbEntry, { maxLength: 40 }).map(uniqueWrites), (entries) => {
        const s = build(entries);
        for (const e of entries) {
          const w = s.get(e.key)!;
          expect(compareMeta(w.meta, e.meta)).toBeGreaterThanOrEqual(0);
        }
      }),
    );
  });
});

describe('digest', () => {
  it('incremental digest equals a full recomputation after any sets and clears', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(arbEntry, fc.boolean()), { maxLength: 60 }), (ops) => {
        const s = new State(99);
        const seen = new Set<string>();
        for (const [entry, clear] of ops) {
          const id = `${entry.meta.node}:${entry.meta.seq}`;
          if (seen.has(id)) continue;
          seen.add(id);
          s.apply({ type: 'set', entry });
          if (clear) {
            const cur = s.get(entry.key)!;
            if (cur.value === null) s.apply({ type: 'clear', key: entry.key, meta: cur.meta });
          }
          expect(s.digest).toBe(fullDigest(s));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('differs when one value differs and buckets locate the difference', () => {
    const meta = { node: 1, seq: 1, ts: 5 };
    const a = build([{ key: 'x', value: new Uint8Array([1]), meta }]);
    const b = build([{ key: 'x', value: new Uint8Array([2]), meta }]);
    expect(a.digest).not.toBe(b.digest);
    const da = a.bucketDigests();
    const db = b.bucketDigests();
    expect(da.filter((d, i) => d !== db[i])).toHaveLength(1);
  });
});

describe('delta', () => {
  it('returns exactly the live entries above the acks, paged by (origin, seq)', () => {
    fc.assert(
      fc.property(
        fc.array(arbEntry, { maxLength: 60 }).map(uniqueWrites),
        fc.dictionary(fc.constantFrom('1', '2', '3', '4', '5'), fc.integer({ min: 0, max: 40 })),
        fc.integer({ min: 1, max: 7 }),
        (entries, ackObj, pageSize) => {
          const s = build(entries);
          const acks = new Map(Object.entries(ackObj).map(([k, v]) => [Number(k), v]));
          const expected = [...s.entries()]
            .filter((e) => e.meta.seq > (acks.get(e.meta.node) ?? 0))
            .sort((x, y) => x.meta.node - y.meta.node || x.meta.seq - y.meta.seq);
          const got: Entry[] = [];
          let after = null;
          for (let pages = 0; ; pages++) {
            const page = s.delta(acks, { maxEntries: pageSize, maxBytes: 1 << 20, after });
            expect(page.entries.length).toBeLessThanOrEqual(pageSize);
            got.push(...page.entries);
            if (page.complete) break;
            after = page.next;
            expect(pages).toBeLessThan(100);
          }
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('cuts pages by bytes but always makes progress', () => {
    const s = build([
      { key: 'a', value: new Uint8Array(100), meta: { node: 1, seq: 1, ts: 1 } },
      { key: 'b', value: new Uint8Array(100), meta: { node: 1, seq: 2, ts: 1 } },
    ]);
    const p1 = s.delta(new Map(), { maxEntries: 10, maxBytes: 10 });
    expect(p1.entries.map((e) => e.key)).toEqual(['a']);
    const p2 = s.delta(new Map(), { maxEntries: 10, maxBytes: 10, after: p1.next });
    expect(p2.entries.map((e) => e.key)).toEqual(['b']);
    expect(p2.complete).toBe(true);
  });
});

describe('local writes', () => {
  it('supersede the current winner even when the clock is behind it', () => {
    const s = build([{ key: 'k', value: null, meta: { node: 7, seq: 3, ts: 10_000 } }]);
    const e = s.stampLocal('k', new Uint8Array([1]), 500);
    expect(e.meta).toEqual({ node: 99, seq: 1, ts: 10_001 });
    expect(s.apply({ type: 'set', entry: e })).toBe(true);
    // Hybrid logical clock: a fresh key stamps above every ts seen too, not at the slow clock.
    expect(s.stampLocal('fresh', null, 500).meta.ts).toBe(10_002);
  });

  it('recover nextSeq from every own op replayed, superseded ones too', () => {
    const s = new State(3);
    s.apply({ type: 'set', entry: { key: 'k', value: null, meta: { node: 4, seq: 1, ts: 100 } } });
    expect(
      s.apply({ type: 'set', entry: { key: 'k', value: null, meta: { node: 3, seq: 9, ts: 1 } } }),
    ).toBe(false);
    expect(s.nextSeq).toBe(10);
  });
});

describe('ownership: what a peer may not claim', () => {
  const now = 1_000_000;
  it('refuses a write in our name unless we are recovering our own past writes', () => {
    const s = new State(7);
    const forged = { key: 'k', value: null, meta: { node: 7, seq: 2 ** 53 - 1, ts: now } };
    const plan = s.planMerge([forged], now, DEFAULT_LIMITS);
    expect(plan.rejected.map((r) => r.reason)).toEqual(['own-origin']);
    expect(s.nextSeq).toBe(1);
    // A local write of ours is not a peer's claim.
    expect(
      s.planMerge([s.stampLocal('k', null, now)], now, DEFAULT_LIMITS, undefined, false).winners,
    ).toHaveLength(1);
    s.ownAcks = false; // a reused id on an empty data dir gets its writes back from peers
    const old = { key: 'k', value: null, meta: { node: 7, seq: 5, ts: now } };
    expect(s.planMerge([old], now, DEFAULT_LIMITS).winners).toEqual([old]);
  });

  it('refuses a seq far beyond what its origin has shown, counting the batch itself', () => {
    const s = new State(7);
    const limits = { ...DEFAULT_LIMITS, maxSeqJump: 100 };
    const e = (key: string, seq: number) => ({ key, value: null, meta: { node: 3, seq, ts: now } });
    const plan = s.planMerge([e('a', 100), e('b', 200), e('c', 301)], now, limits);
    expect(plan.winners.map((w) => w.key)).toEqual(['a', 'b']);
    expect(plan.rejected.map((r) => r.reason)).toEqual(['seq-jump']);
    for (const w of plan.winners) s.apply({ type: 'set', entry: w });
    expect(s.planMerge([e('c', 300)], now, limits).winners).toHaveLength(1);
    expect(DEFAULT_LIMITS.maxSeqJump).toBeLessThan(Number.MAX_SAFE_INTEGER / 2 ** 20);
  });

  it('clips acks a peer reports to the seqs held or covered here', () => {
    const s = new State(7);
    s.apply({ type: 'set', entry: { key: 'a', value: null, meta: { node: 3, seq: 40, ts: now } } });
    s.apply({ type: 'set', entry: { key: 'b', value: null, meta: { node: 7, seq: 9, ts: now } } });
    s.raiseAcks(new Map([[5, 12]]));
    const forged = new Map([
      [3, 2 ** 53 - 1],
      [5, 2 ** 53 - 1],
      [7, 2 ** 53 - 1],
      [8, 4],
    ]);
    expect([...s.clipAcks(forged, 100)]).toEqual([
      [3, 40],
      [5, 12],
      [7, 9],
    ]);
    expect([...s.clipAcks(new Map([[3, 30]]), 100)]).toEqual([[3, 30]]);
  });
});

describe('hybrid logical clock', () => {
  it('stamps a local write above every ts seen, so a node hours behind still supersedes', () => {
    const s = new State(7);
    const twoHoursMs = 2 * 3600_000;
    const now = 1_000_000_000;
    const theirs = { key: 'k', value: null, meta: { node: 3, seq: 1, ts: now + twoHoursMs } };
    const plan = s.planMerge([theirs], now, DEFAULT_LIMITS);
    expect(plan.winners).toHaveLength(1); // hours ahead is accepted, not refused
    s.apply({ type: 'set', entry: theirs });
    expect(s.aheadMs.get(3)).toBe(twoHoursMs);
    const mine = s.stampLocal('other-key', null, now);
    expect(mine.meta.ts).toBe(now + twoHoursMs + 1);
    expect(compareMeta(s.stampLocal('k', null, now).meta, theirs.meta)).toBe(1);
  });
});

describe('limits and admission', () => {
  const now = 1_000_000;
  const meta = { node: 1, seq: 1, ts: now };
  it('rejects each violation with its reason and keeps the rest', () => {
    const s = new State(99);
    const plan = s.planMerge(
      [
        { key: 'x'.repeat(4097), value: null, meta },
        { key: 'big', value: new Uint8Array(1024 * 1024 + 1), meta: { ...meta, seq: 2 } },
        {
          key: 'future',
          value: null,
          meta: { ...meta, seq: 3, ts: now + 7 * 24 * 3600 * 1000 + 1 },
        },
        { key: 'bad/..', value: null, meta: { ...meta, seq: 4 } },
        { key: '', value: null, meta: { ...meta, seq: 5 } },
        { key: 'ok', value: new Uint8Array([1]), meta: { ...meta, seq: 6 } },
      ],
      now,
      DEFAULT_LIMITS,
      (e) => (e.key.includes('..') ? 'traversal' : null),
    );
    expect(plan.rejected.map((r) => r.reason)).toEqual([
      'key-too-long',
      'value-too-large',
      'future-ts',
      'admission',
      'empty-key',
    ]);
    expect(plan.winners.map((e) => e.key)).toEqual(['ok']);
  });

  it('spends no admission check on an entry that is already covered', () => {
    const s = new State(99);
    const e = { key: 'k', value: new Uint8Array([1]), meta };
    s.apply({ type: 'set', entry: e });
    let asked = 0;
    const admit = (): null => (asked++, null);
    const again = { ...e, value: new Uint8Array([1]) };
    const older = { ...e, meta: { ...meta, seq: 0, ts: now - 1 } };
    const plan = s.planMerge([again, older], now, DEFAULT_LIMITS, admit);
    expect(plan).toEqual({ winners: [], stale: 2, rejected: [] });
    expect(asked).toBe(0); // rounds resend what pushes delivered: most of a busy node's input
    const newer = { ...e, meta: { ...meta, seq: 2, ts: now + 1 } };
    expect(s.planMerge([newer], now, DEFAULT_LIMITS, admit).winners).toEqual([newer]);
    expect(asked).toBe(1);
  });

  it('bounds entries per message, message bytes and total keys', () => {
    const s = new State(99);
    const many = Array.from({ length: 3 }, (_, i) => ({
      key: `k${i}`,
      value: new Uint8Array(10),
      meta: { node: 1, seq: i + 1, ts: now },
    }));
    expect(
      s.planMerge(many, now, { ...DEFAULT_LIMITS, maxEntriesPerMessage: 2 }).rejected[0]!.reason,
    ).toBe('too-many-entries');
    expect(
      s.planMerge(many, now, { ...DEFAULT_LIMITS, maxMessageBytes: 50 }).rejected[0]!.reason,
    ).toBe('message-too-large');
    const plan = s.planMerge(many, now, { ...DEFAULT_LIMITS, maxKeys: 2 });
    expect(plan.winners).toHaveLength(2);
    expect(plan.rejected.map((r) => r.reason)).toEqual(['too-many-keys']);
  });
});

describe('tombstone GC', () => {
  it('collects a tombstone only once every member acked it and it is old enough', () => {
    const s = new State(1);
    s.apply({ type: 'add-peer', peer: 2 });
    s.apply({ type: 'set', entry: { key: 'k', value: null, meta: { node: 1, seq: 1, ts: 100 } } });
    expect(s.collectableTombstones(10_000, 1000)).toHaveLength(0);
    s.peerAcks.set(2, new Map([[1, 1]]));
    expect(s.collectableTombstones(500, 1000)).toHaveLength(0);
    const [t] = s.collectableTombstones(10_000, 1000);
    expect(s.apply({ type: 'clear', key: 'k', meta: t!.meta })).toBe(true);
    expect(s.get('k')).toBeUndefined();
    expect(s.digest).toBe(new State(1).digest);
  });

  it('never takes back what it collected: the tombstone itself or a value it had superseded', () => {
    const s = new State(1);
    s.apply({ type: 'add-peer', peer: 2 });
    const put = { key: 'k', value: new Uint8Array([1]), meta: { node: 3, seq: 1, ts: 100 } };
    const del = { key: 'k', value: null, meta: { node: 2, seq: 1, ts: 200 } };
    for (const e of [put, del]) s.apply({ type: 'set', entry: e });
    s.raiseAcks(
      new Map([
        [2, 1],
        [3, 1],
      ]),
    );
    s.apply({ type: 'clear', key: 'k', meta: del.meta });
    // A peer whose GC has not run yet offers the tombstone back; a member back from a long
    // absence offers the value the tombstone had superseded: both stay collected.
    expect(s.planMerge([del], 1000, DEFAULT_LIMITS).winners).toEqual([]);
    expect(s.planMerge([put], 1000, DEFAULT_LIMITS).winners).toEqual([]);
    // A write this node has not covered is new, whatever its key.
    const later = { key: 'k', value: new Uint8Array([2]), meta: { node: 3, seq: 2, ts: 150 } };
    expect(s.planMerge([later], 1000, DEFAULT_LIMITS).winners).toEqual([later]);
  });

  it('collects retired values (an embedder’s delete records) like tombstones, when allowed', () => {
    const s = new State(1);
    s.apply({ type: 'add-peer', peer: 2 });
    const gone = new Uint8Array([0xde]);
    const del = { key: 'k', value: gone, meta: { node: 2, seq: 1, ts: 100 } };
    const live = { key: 'j', value: new Uint8Array([1]), meta: { node: 2, seq: 2, ts: 100 } };
    for (const e of [del, live]) s.apply({ type: 'set', entry: e }, 0);
    s.raiseAcks(new Map([[2, 2]]));
    s.peerAcks.set(2, new Map([[2, 2]]));
    // Until the embedder names its delete records, a live value is never collected.
    expect(s.collectableTombstones(10_000, 1000)).toEqual([]);
    s.retire((v) => v[0] === 0xde, 5000);
    expect(s.dead).toBe(1);
    expect(s.collectableTombstones(5500, 1000)).toEqual([]); // its age starts when named
    expect(s.collectableTombstones(10_000, 1000, () => false)).toEqual([]); // embedder says wait
    const [t] = s.collectableTombstones(10_000, 1000);
    expect(t!.key).toBe('k');
    expect(s.apply({ type: 'clear', key: 'k', meta: t!.meta })).toBe(true);
    expect(s.get('k')).toBeUndefined();
    expect([s.dead, s.tombstones]).toEqual([0, 0]);
    // Offered back by a peer that has not collected it yet: stays collected.
    expect(s.planMerge([del], 20_000, DEFAULT_LIMITS).winners).toEqual([]);
    // A WAL replays a clear before the embedder names its values: it still applies.
    const replay = new State(1);
    replay.apply({ type: 'set', entry: del });
    expect(replay.apply({ type: 'clear', key: 'k', meta: del.meta })).toBe(true);
    expect(replay.get('k')).toBeUndefined();
  });
});

describe('State source tags', () => {
  it('name the peer a winner came from, until the key changes or the peer is forgotten', () => {
    const s = build([{ key: 'k', value: new Uint8Array([1]), meta: { node: 7, seq: 1, ts: 1 } }]);
    const tag = s.sourceIdOf(7);
    s.setSource('k', s.get('k')!.meta, tag);
    expect(s.sourceOf('k')).toBe(7);
    expect(s.sourceOf('missing')).toBeUndefined();
    s.apply({ type: 'set', entry: { key: 'k', value: null, meta: { node: 99, seq: 1, ts: 2 } } });
    expect(s.sourceOf('k')).toBeUndefined(); // a new entry: its tag is not the old one's
    s.apply({ type: 'set', entry: { key: 'j', value: null, meta: { node: 7, seq: 2, ts: 3 } } });
    s.setSource('j', s.get('j')!.meta, s.sourceIdOf(7));
    s.forgetPeer(7); // rebuilt: what came from its old incarnation is no longer "from" it
    expect(s.sourceOf('j')).toBeUndefined();
  });
});

describe('State.holds', () => {
  it('tells the winning write by its meta, whatever object carries it', () => {
    const first: Entry = { key: 'k', value: new Uint8Array([1]), meta: { node: 7, seq: 1, ts: 5 } };
    const later: Entry = { key: 'k', value: new Uint8Array([2]), meta: { node: 8, seq: 1, ts: 6 } };
    const s = build([first]);
    expect(s.holds(first)).toBe(true);
    expect(s.holds({ ...first, meta: { ...first.meta } })).toBe(true); // a copy, as a merge has
    expect(s.holds({ ...first, meta: { ...first.meta, ts: 4 } })).toBe(false);
    expect(s.holds({ ...first, key: 'other' })).toBe(false);
    s.apply({ type: 'set', entry: later });
    expect(s.holds(first)).toBe(false);
    expect(s.holds(later)).toBe(true);
    // The kept entry hands out its meta as a fresh object each time: never compare by identity.
    expect(s.get('k')!.meta).toEqual(later.meta);
    s.setSource('k', { ...later.meta }, s.sourceIdOf(8));
    expect(s.sourceOf('k')).toBe(8);
  });
});

describe('State held marks (push confirmations)', () => {
  const put = (s: State, key: string, node: number, seq: number): void =>
    void s.apply({ type: 'set', entry: { key, value: null, meta: { node, seq, ts: seq } } });
  const keysFor = (s: State, peer: number): string[] =>
    s
      .delta(s.peerAcks.get(peer) ?? new Map(), {
        maxEntries: 100,
        maxBytes: 1e6,
        skipSource: s.sourceIdOf(peer),
      })
      .entries.map((e) => e.key);

  it('leave confirmed versions out of deltas for that peer only, until its link is forgotten', () => {
    const s = new State(1);
    put(s, 'a', 3, 1);
    put(s, 'b', 3, 2);
    expect(s.confirmHeld(2, [{ key: 'a', meta: { node: 3, seq: 1, ts: 1 } }])).toBe(1);
    expect(keysFor(s, 2)).toEqual(['b']);
    expect(keysFor(s, 4)).toEqual(['a', 'b']); // another peer confirmed nothing
    s.forgetSource(2); // its link dropped
    expect(keysFor(s, 2)).toEqual(['a', 'b']);
  });

  it('mark only the exact version still winning', () => {
    const s = new State(1);
    put(s, 'a', 3, 1);
    put(s, 'a', 3, 2); // superseded here before the confirmation came
    expect(s.confirmHeld(2, [{ key: 'a', meta: { node: 3, seq: 1, ts: 1 } }])).toBe(0);
    expect(s.confirmHeld(2, [{ key: 'a', meta: { node: 3, seq: 2, ts: 2 } }])).toBe(1);
    expect(keysFor(s, 2)).toEqual([]);
    put(s, 'a', 3, 3); // a newer write: the mark was for the old entry
    expect(keysFor(s, 2)).toEqual(['a']);
  });

  it('are dropped once the peer’s acks cover them', () => {
    const s = new State(1);
    put(s, 'a', 3, 1);
    put(s, 'b', 3, 2);
    s.confirmHeld(2, [
      { key: 'a', meta: { node: 3, seq: 1, ts: 1 } },
      { key: 'b', meta: { node: 3, seq: 2, ts: 2 } },
    ]);
    s.peerAcks.set(2, new Map([[3, 1]]));
    s.pruneHeld(2);
    expect(keysFor(s, 2)).toEqual([]); // b still marked, a covered by the acks
    s.peerAcks.set(2, new Map());
    expect(keysFor(s, 2)).toEqual(['a']); // a's mark is gone: only the acks had covered it
  });
});

describe('PeerMarks', () => {
  it('keeps at most MAX_HELD_MARKS_PER_PEER marks per peer', () => {
    const m = new PeerMarks();
    const entry = (i: number): Entry => ({
      key: `k${i}`,
      value: null,
      meta: { node: 3, seq: i, ts: i },
    });
    let marked = 0;
    for (let i = 0; i < MAX_HELD_MARKS_PER_PEER; i++) if (m.mark(2, entry(i))) marked++;
    expect(marked).toBe(MAX_HELD_MARKS_PER_PEER);
    expect(m.mark(2, entry(-1))).toBe(false);
    expect(m.heldBy(m.idOf(2))!.size).toBe(MAX_HELD_MARKS_PER_PEER);
  });
});
