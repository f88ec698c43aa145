import { describe, expect, it } from 'vitest';
import { ByteBudget } from './byte-budget.js';

describe('ByteBudget', () => {
  it('holds at most its bytes, lets one oversized holder run, and wakes waiters that fit', async () => {
    const b = new ByteBudget(10);
    const r1 = await b.acquire(6);
    let got2 = false;
    const p2 = b.acquire(6).then((r) => ((got2 = true), r));
    await new Promise((r) => setImmediate(r));
    expect(got2).toBe(false); // 12 > 10: waits
    r1();
    r1(); // a second release gives nothing back twice
    const r2 = await p2;
    expect(b.held).toBe(6);
    r2();
    const big = await b.acquire(50); // alone: runs however large
    expect(b.held).toBe(50);
    const smalls = [b.acquire(4), b.acquire(4)];
    big();
    const releases = await Promise.all(smalls); // both fit once the large one is gone
    expect(b.held).toBe(8);
    for (const release of releases) release();
    expect(b.held).toBe(0);
  });
});
