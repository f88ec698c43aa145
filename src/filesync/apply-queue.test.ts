import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApplyQueue, RETRY_FIRST_MS, RETRY_MAX_MS } from './apply-queue.js';

afterEach(() => vi.useRealTimers());

/** A run function whose applies the test ends by hand. */
function harness(limit: number, parkedLimit: number, reservePerSource = 1) {
  const open = new Map<string, { ok: () => void; fail: () => void }>();
  const started: string[] = [];
  const failures: Array<[string, number]> = [];
  const q = new ApplyQueue(
    (rel) =>
      new Promise<void>((ok, no) => {
        started.push(rel);
        open.set(rel, { ok, fail: () => no(new Error('no peer serves it')) });
      }),
    { limit, parkedLimit, reservePerSource, onFailure: (rel, _e, ms) => failures.push([rel, ms]) },
  );
  const settle = () => new Promise((r) => setImmediate(r));
  return { q, open, started, failures, settle };
}

describe('ApplyQueue', () => {
  it('backs a failing path off, doubling up to the cap, and forgets it once it applies', async () => {
    vi.useFakeTimers();
    const h = harness(4, 1);
    h.q.add('x');
    for (let i = 0; i < 12; i++) {
      h.open.get('x')!.fail();
      await vi.advanceTimersByTimeAsync(0);
      const want = Math.min(RETRY_FIRST_MS * 2 ** i, RETRY_MAX_MS);
      expect(h.failures.at(-1)).toEqual(['x', want]);
      const before = h.started.length;
      await vi.advanceTimersByTimeAsync(want - 1);
      expect(h.started.length).toBe(before); // not a moment early
      await vi.advanceTimersByTimeAsync(1);
      expect(h.started.length).toBe(before + 1);
    }
    expect(h.q.parked).toBe(1);
    h.open.get('x')!.ok();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.q.parked).toBe(0);
  });

  it('gives parked paths only their share of the slots: a fresh change never waits on them', async () => {
    vi.useFakeTimers();
    const h = harness(4, 1);
    for (let i = 0; i < 10; i++) h.q.add(`junk${i}`, 66);
    expect(h.q.applying).toBe(4);
    // The first four fail (no peer serves them); then every junk path is parked.
    for (let round = 0; round < 3; round++) {
      for (const [rel, o] of [...h.open]) {
        h.open.delete(rel);
        o.fail();
      }
      await vi.advanceTimersByTimeAsync(0);
    }
    await vi.advanceTimersByTimeAsync(RETRY_MAX_MS);
    expect(h.q.applying).toBe(1); // one parked retry at a time, however many are due
    h.q.add('honest', 7);
    expect(h.started.at(-1)).toBe('honest');
    expect(h.q.applying).toBe(2);
  });

  it('starts another peer’s change even while one peer’s changes fill every slot, and serves peers in turn', async () => {
    const h = harness(4, 1, 2);
    for (let i = 0; i < 10; i++) h.q.add(`junk${i}`, 66);
    expect(h.q.applying).toBe(4);
    h.q.add('b1', 7);
    h.q.add('b2', 7);
    h.q.add('b3', 7);
    expect(h.started.slice(-2)).toEqual(['b1', 'b2']); // beyond the limit, up to the reserve
    expect(h.q.applying).toBe(6);
    // Beyond the limit only while a source holds fewer than its reserve.
    h.open.get('junk0')!.ok();
    await h.settle();
    expect(h.q.applying).toBe(5);
    expect(h.started).not.toContain('b3');
    h.open.get('b1')!.ok();
    await h.settle();
    expect(h.started.at(-1)).toBe('b3');
    // Below the limit, the junk's source is the only one left: it takes the freed slots.
    h.open.get('b2')!.ok();
    h.open.get('b3')!.ok();
    h.open.get('junk1')!.ok();
    await h.settle();
    expect(h.started.filter((r) => r.startsWith('junk'))).toHaveLength(6);
  });

  it('tries a parked path whose version changed at once, in the parked slots', async () => {
    vi.useFakeTimers();
    const h = harness(4, 1);
    h.q.add('x');
    h.open.get('x')!.fail();
    await vi.advanceTimersByTimeAsync(0);
    const n = h.started.length;
    h.q.add('x');
    expect(h.started.length).toBe(n + 1);
    expect(h.q.close()).toBe(1);
  });
});
