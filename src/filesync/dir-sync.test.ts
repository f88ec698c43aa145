import { beforeEach, describe, expect, it } from 'vitest';
import { DirSyncer } from './dir-sync.js';
import { MemDisk } from './mem-disk.js';

const calls: { resolve: () => void }[] = [];
/** A disk whose directory fsyncs end when the test says. */
const disk = Object.assign(new MemDisk(), {
  fsyncDir: () => new Promise<void>((resolve) => calls.push({ resolve })),
});

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('directory fsync group commit', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it('a rename made while an fsync is in flight waits for the next one, which all such share', async () => {
    const d = new DirSyncer(disk);
    const dir = import.meta.dirname;
    const done: string[] = [];
    const first = d.sync(dir).then(() => done.push('first'));
    await tick();
    expect(calls.length).toBe(1);
    // Renamed after that fsync started: it does not cover them.
    const later = [d.sync(dir), d.sync(dir), d.sync(dir)].map((p, i) =>
      p.then(() => done.push(`later${i}`)),
    );
    await tick();
    expect(calls.length).toBe(1); // the next one waits for the one in flight
    calls[0]!.resolve();
    await first;
    await tick();
    expect(done).toEqual(['first']);
    expect(calls.length).toBe(2); // one more for all three
    calls[1]!.resolve();
    await Promise.all(later);
    expect(done.sort()).toEqual(['first', 'later0', 'later1', 'later2']);
    // Idle again: the next request starts its own fsync at once.
    const again = d.sync(dir);
    await tick();
    expect(calls.length).toBe(3);
    calls[2]!.resolve();
    await again;
  });
});
