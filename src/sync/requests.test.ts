import { describe, expect, it } from 'vitest';
import { EventQueue, type SimEvent } from '../../test/sim/events.js';
import type { SyncMessage } from './messages.js';
import { expectAnswer, RequestError, Requests } from './requests.js';
import type { Scheduler } from './types.js';

function setup(linked = true, sendOk = true) {
  const q = new EventQueue();
  const sched: Scheduler = {
    now: () => q.now,
    setTimeout: (fn, ms) => q.schedule(ms, fn),
    clearTimeout: (h) => void ((h as SimEvent).cancelled = true),
  };
  const sent: SyncMessage[] = [];
  const r = new Requests(
    { sched, linked: () => linked, send: (_p, m) => (sent.push(m), sendOk) },
    1000,
  );
  return { q, r, sent };
}

describe('Requests', () => {
  it('resolves with the answer from the peer asked, and ignores one from another peer', async () => {
    const { r, sent } = setup();
    const p = r.request(2, (rid) => ({ t: 'buckets', rid }));
    const rid = (sent[0] as { rid: number }).rid;
    r.onResponse(3, { t: 'buckets-res', rid, digests: [] }); // not the peer asked
    r.onResponse(2, { t: 'buckets-res', rid, digests: ['x'] });
    expect(expectAnswer(await p, 'buckets-res').digests).toEqual(['x']);
  });

  it('fails at its deadline, when the link goes down, when sync stops, or unsent', async () => {
    const { q, r } = setup();
    const late = r.request(2, (rid) => ({ t: 'buckets', rid }));
    for (let ev = q.pop(); ev !== undefined; ev = q.pop()) if (!ev.cancelled) ev.fn();
    expect(q.now).toBe(1000);
    await expect(late).rejects.toThrow(/no answer in 1000 ms/);
    const down = r.request(2, (rid) => ({ t: 'buckets', rid }));
    const other = r.request(3, (rid) => ({ t: 'buckets', rid }));
    r.failAll('link down: x', 2);
    await expect(down).rejects.toThrow(/link down/);
    r.failAll('sync stopped');
    await expect(other).rejects.toThrow(/sync stopped/);
    await expect(setup(false).r.request(2, (rid) => ({ t: 'buckets', rid }))).rejects.toThrow(
      /not connected/,
    );
    await expect(
      setup(true, false).r.request(2, (rid) => ({ t: 'buckets', rid })),
    ).rejects.toBeInstanceOf(RequestError);
  });

  it('turns a peer error or an answer of the wrong type into a RequestError', () => {
    expect(() => expectAnswer({ t: 'error', rid: 1, message: 'busy' }, 'sync-res')).toThrow(
      /peer error: busy/,
    );
    expect(() => expectAnswer({ t: 'buckets-res', rid: 1, digests: [] }, 'sync-res')).toThrow(
      /expected sync-res, got buckets-res/,
    );
  });
});
