import { describe, expect, it } from 'vitest';
import type { Entry } from '../core/index.js';
import type { Push, SyncMessage } from './messages.js';
import { MAX_UNCONFIRMED_ENTRIES, PushRelay } from './push.js';
import type { PeerLink, Scheduler } from './types.js';

describe('PushRelay confirmations', () => {
  it('keep the writes of each frame until confirmed, within MAX_UNCONFIRMED_ENTRIES per peer', () => {
    const sent: Push[] = [];
    const link: PeerLink = {
      peer: 2,
      incarnation: 'inc-2',
      advertise: null,
      bufferedBytes: 0,
      send: (m: SyncMessage) => (m.t === 'push' && sent.push(m), true),
    };
    const sched: Scheduler = {
      now: () => 0,
      setTimeout: () => ({}),
      clearTimeout: () => undefined,
    };
    const frameEntries = 4096;
    const relay = new PushRelay(new Map([[2, link]]), sched, {
      windowMs: 10,
      pageEntries: frameEntries,
      pageBytes: 1 << 30,
      maxBufferedBytes: 1 << 30,
    });
    const entry = (i: number): Entry => ({
      key: `k${i}`,
      value: null,
      meta: { node: 3, seq: i + 1, ts: i + 1 },
    });
    const frames = MAX_UNCONFIRMED_ENTRIES / frameEntries + 2;
    for (let f = 0; f < frames; f++) {
      for (let i = 0; i < frameEntries; i++) relay.offer(entry(f * frameEntries + i), undefined);
      relay.flush();
    }
    expect(sent).toHaveLength(frames);
    expect(new Set(sent.map((m) => m.id)).size).toBe(frames); // ids never repeat
    // The two oldest frames were let go to stay within the bound; the rest are kept.
    expect(relay.confirmed(2, sent[0]!.id)).toBeUndefined();
    expect(relay.confirmed(2, sent[1]!.id)).toBeUndefined();
    const last = relay.confirmed(2, sent[frames - 1]!.id)!;
    expect(last.map((w) => w.key)).toEqual(sent[frames - 1]!.entries.map((w) => w[0]));
    expect(relay.confirmed(2, sent[frames - 1]!.id)).toBeUndefined(); // once only
    expect(relay.confirmed(3, sent[2]!.id)).toBeUndefined(); // not another peer's frame
    expect(relay.confirmed(2, sent[2]!.id)).toHaveLength(frameEntries);
    relay.forget(2); // the link dropped: nothing it confirms later counts
    expect(relay.confirmed(2, sent[3]!.id)).toBeUndefined();
  });
});
