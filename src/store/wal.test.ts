import { appendFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StateOp } from '../core/index.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { Store } from './store.js';
import { encodeRecord, scanSegment, WAL_HEADER_BYTES } from './wal.js';

const NODE = 7;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

function setOp(i: number): StateOp {
  return {
    type: 'set',
    entry: {
      key: `k${i}`,
      value: Buffer.from(`value-${i}`),
      meta: { node: NODE, seq: i, ts: 1000 + i },
    },
  };
}

async function writeLog(n: number): Promise<string> {
  const store = await Store.open({ dataDir: dir, nodeId: NODE });
  await Promise.all(Array.from({ length: n }, (_, i) => store.append(setOp(i + 1))));
  await store.close({ snapshot: false });
  const segs = (await readdir(path.join(dir, 'wal'))).sort();
  return path.join(dir, 'wal', segs[0]!);
}

async function keysAfterRecovery(): Promise<string[]> {
  const store = await Store.open({ dataDir: dir, nodeId: NODE });
  const keys = [...store.state.entries()].map((e) => e.key).sort();
  await store.close({ snapshot: false });
  return keys;
}

const expectKeys = (n: number): string[] => Array.from({ length: n }, (_, i) => `k${i + 1}`).sort();

describe('WAL recovery', () => {
  it('cut at every byte offset of the last record keeps every earlier record and appends cleanly', async () => {
    const file = await writeLog(5);
    const full = await readFile(file);
    const lastLen = encodeRecord(setOp(5)).length;
    const lastStart = full.length - lastLen;
    for (let cut = lastStart; cut < full.length; cut++) {
      // Start each offset from the original single segment, cut at `cut`.
      await rm(path.join(dir, 'wal'), { recursive: true });
      await mkdir(path.join(dir, 'wal'));
      await writeFile(file, full.subarray(0, cut));
      const store = await Store.open({ dataDir: dir, nodeId: NODE });
      expect(store.recovery.cut).toBe(cut > lastStart);
      expect([...store.state.entries()].map((e) => e.key).sort()).toEqual(expectKeys(4));
      await store.append(setOp(6));
      await store.close({ snapshot: false });
      expect(await readFile(file)).toHaveLength(lastStart); // the torn tail was cut, not kept
      expect(await keysAfterRecovery()).toEqual([...expectKeys(4), 'k6'].sort());
    }
  });

  it('a flipped byte in any record ends the log at the last good record before it', async () => {
    const file = await writeLog(6);
    const full = await readFile(file);
    const recLen = encodeRecord(setOp(1)).length; // same size for k1..k6 (single-digit)
    for (let victim = 0; victim < 6; victim++) {
      const bad = Buffer.from(full);
      const at = WAL_HEADER_BYTES + victim * recLen + 8 + 3; // inside the payload
      bad[at] = bad[at]! ^ 0x40;
      const scan = scanSegment(bad, NODE);
      expect(scan.problem).toMatch(/checksum/);
      expect(scan.ops).toHaveLength(victim);
    }
  });

  it('an absurd length is rejected before any allocation', async () => {
    const file = await writeLog(2);
    const full = await readFile(file);
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(0xffff_fff0, 0);
    await writeFile(file, Buffer.concat([full, huge, Buffer.alloc(100)]));
    const scan = scanSegment(await readFile(file), NODE);
    expect(scan.problem).toMatch(/out of bounds/);
    expect(scan.ops).toHaveLength(2);
    expect(await keysAfterRecovery()).toEqual(expectKeys(2));
  });

  it('a record claiming more bytes than the file holds is a torn tail', async () => {
    const file = await writeLog(3);
    const rec = encodeRecord(setOp(4));
    await appendFile(file, rec.subarray(0, 12));
    expect(await keysAfterRecovery()).toEqual(expectKeys(3));
  });

  it('a segment of another node is not replayed', async () => {
    const file = await writeLog(2);
    const buf = await readFile(file);
    expect(scanSegment(buf, NODE + 1).problem).toMatch(/names node 7/);
  });

  it('refuses a record that was cut mid-log and never replays later segments past it', async () => {
    await writeLog(3);
    const store = await Store.open({ dataDir: dir, nodeId: NODE });
    await store.append(setOp(4));
    await store.close({ snapshot: false });
    const segs = (await readdir(path.join(dir, 'wal'))).sort();
    expect(segs.length).toBeGreaterThanOrEqual(2);
    const first = path.join(dir, 'wal', segs[0]!);
    const buf = await readFile(first);
    await writeFile(first, buf.subarray(0, buf.length - 3));
    expect(await keysAfterRecovery()).toEqual(expectKeys(2));
  });
});

describe('a segment with no header', () => {
  it('left by a start that died creating it costs none of the segments written after it', async () => {
    await writeLog(2);
    // A start killed right after creating its segment (or failing to write its header).
    const segs = (await readdir(path.join(dir, 'wal'))).sort();
    const next = Number(segs[segs.length - 1]!.slice(0, 16)) + 1;
    await writeFile(path.join(dir, 'wal', `${String(next).padStart(16, '0')}.wal`), '');
    const store = await Store.open({ dataDir: dir, nodeId: NODE });
    expect(store.recovery.cut).toBe(true);
    await store.append(setOp(3)); // acknowledged, in a segment after the empty one
    await store.close({ snapshot: false });
    expect(await keysAfterRecovery()).toEqual(expectKeys(3));
  });
});

describe('group commit', () => {
  it('shares one write per event-loop turn and resolves only once durable', async () => {
    const store = await Store.open({ dataDir: dir, nodeId: NODE });
    const ops = Array.from({ length: 500 }, (_, i) => setOp(i + 1));
    const done = Promise.all(ops.map((op) => store.append(op)));
    expect(store.state.size).toBe(0); // nothing visible before it is durable
    await done;
    expect(store.state.size).toBe(500);
    expect(store.stats.groupCommits).toBe(1);
    // Records are on disk when the promise resolves.
    const segs = (await readdir(path.join(dir, 'wal'))).sort();
    const scan = scanSegment(await readFile(path.join(dir, 'wal', segs[segs.length - 1]!)), NODE);
    expect(scan.ops).toHaveLength(500);
    await store.close({ snapshot: false });
  });

  it('gathers the next group while one is syncing', async () => {
    const store = await Store.open({ dataDir: dir, nodeId: NODE });
    let i = 0;
    const writers = Array.from({ length: 50 }, async () => {
      for (let k = 0; k < 20; k++) await store.append(setOp(++i));
    });
    await Promise.all(writers);
    expect(store.state.size).toBe(1000);
    expect(store.stats.groupCommits).toBeLessThanOrEqual(40);
    await store.close({ snapshot: false });
  });
});
