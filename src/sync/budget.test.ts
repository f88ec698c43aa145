import { describe, expect, it } from 'vitest';
import { ServeBudgets } from './budget.js';

describe('ServeBudgets', () => {
  const opts = {
    burstBytes: 1000,
    refillBytesPerSec: 100,
    perRequestByteFactor: 10,
    minRequestBytes: 10,
  };

  it('answers a peer until its credit is spent, then only as it refills', () => {
    let now = 0;
    const b = new ServeBudgets(opts, () => now);
    let sent = 0;
    for (let i = 0; i < 100; i++) {
      if (!b.allow(7, 0)) continue;
      b.charge(7, 400);
      sent += 400;
    }
    expect(sent).toBe(1200); // the burst, overdrawn once by the last request it allowed
    expect(b.allow(7, 0)).toBe(false);
    now += 2000; // 200 bytes of refill do not pay back the 230 overdrawn
    expect(b.allow(7, 0)).toBe(false);
    now += 1000;
    expect(b.allow(7, 0)).toBe(true);
    // Other peers have their own credit.
    expect(b.allow(8, 0)).toBe(true);
  });

  it('credits ten times what a peer sends: answering in kind is never throttled', () => {
    const now = 0;
    const b = new ServeBudgets(opts, () => now);
    for (let i = 0; i < 1000; i++) {
      expect(b.allow(7, 100)).toBe(true);
      b.charge(7, 900);
    }
  });
});
