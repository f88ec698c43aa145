import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { LockedError, readLock, takeLock } from './lock.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('filesync-lock-')));
afterEach(() => cleanup());

/** Pids 1000+ stand for other live processes; 999 for one that died. */
const isAlive = (pid: number): boolean => pid >= 1000;
const take = (pid: number) => takeLock(dir, { pid, isAlive });
const holder = async (): Promise<number> =>
  (JSON.parse(await readFile(path.join(dir, 'lock'), 'utf8')) as { pid: number }).pid;

/** How many of the takers won; every loser must have been refused with LockedError. */
async function winners(takers: Promise<unknown>[]): Promise<number> {
  const results = await Promise.allSettled(takers);
  for (const r of results)
    if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockedError);
  return results.filter((r) => r.status === 'fulfilled').length;
}

describe('data dir lock', () => {
  it('refuses a live holder and takes over a stale lock, its own pid included', async () => {
    await take(1000);
    await expect(take(1001)).rejects.toThrow(/in use by process 1000/);
    await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 999, advertise: null }));
    await take(1001);
    expect(await holder()).toBe(1001);
    // A restarted container's node may get the pid its dead predecessor wrote.
    await take(1001);
    expect(await holder()).toBe(1001);
  });

  it('lets exactly one of many concurrent takers win, with no lock or a stale one', async () => {
    for (let round = 0; round < 40; round++) {
      for (const n of await readdir(dir)) await rm(path.join(dir, n));
      if (round % 2 === 1)
        await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 999, advertise: null }));
      const n = await winners([1000, 1001, 1002, 1003].map((pid) => take(pid)));
      expect(n, `round ${round}`).toBe(1);
      expect(await holder()).toBeGreaterThanOrEqual(1000);
      // Nothing but the lock is left behind.
      expect(await readdir(dir)).toEqual(['lock']);
    }
  });

  it('rewrites the lock whole and releases it', async () => {
    const lock = await takeLock(dir);
    await lock.update({ pid: process.pid, advertise: '127.0.0.1:7400', token: 't' });
    expect(await readLock(dir)).toEqual({
      pid: process.pid,
      advertise: '127.0.0.1:7400',
      token: 't',
    });
    // It holds the control token: its owner's alone.
    expect((await stat(path.join(dir, 'lock'))).mode & 0o777).toBe(0o600);
    await lock.release();
    expect(await readLock(dir)).toBeNull();
    expect(await readdir(dir)).toEqual([]);
  });

  it("clears what dead takers left aside, never a live taker's", async () => {
    await writeFile(path.join(dir, 'lock.999'), JSON.stringify({ pid: 999, advertise: null }));
    await writeFile(path.join(dir, 'lock.1001'), JSON.stringify({ pid: 1001, advertise: null }));
    await take(1000);
    expect((await readdir(dir)).sort()).toEqual(['lock', 'lock.1001']);
  });

  it('waits for an unreadable lock before calling it stale', async () => {
    await writeFile(path.join(dir, 'lock'), '');
    const t0 = Date.now();
    await take(1000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });
});
