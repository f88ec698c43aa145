import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StateOp } from '../core/index.js';
import { tempDir } from '../../test/helpers/tmp.js';
import type { SnapshotStep } from './snapshot.js';
import { Store } from './store.js';

const NODE = 3;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => cleanup());

const setOp = (i: number, v = 'v'): StateOp => ({
  type: 'set',
  entry: { key: `k${i}`, value: Buffer.from(`${v}${i}`), meta: { node: NODE, seq: i, ts: 10 + i } },
});

async function contents(): Promise<Record<string, string>> {
  const store = await Store.open({ dataDir: dir, nodeId: NODE });
  const out: Record<string, string> = {};
  for (const e of store.state.entries()) out[e.key] = Buffer.from(e.value!).toString();
  await store.close({ snapshot: false });
  return out;
}

const expected = (n: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i + 1}`, `v${i + 1}`]));

class Crash extends Error {}

describe('snapshots', () => {
  const steps: SnapshotStep[] = [
    'tmp-written',
    'tmp-synced',
    'bak-renamed',
    'renamed',
    'dir-synced',
  ];

  for (const step of steps) {
    it(`a crash after "${step}" loses nothing, for the first and a later snapshot`, async () => {
      const want: Record<string, string> = {};
      for (let round = 0; round < 2; round++) {
        const store = await Store.open({ dataDir: dir, nodeId: NODE });
        const base = round * 10;
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.append(setOp(base + i + 1))));
        await expect(
          store.snapshot((s) => {
            if (s === step) throw new Crash(step);
          }),
        ).rejects.toThrow(Crash);
        // Writes after the aborted snapshot land in the new segment.
        await store.append(setOp(base + 100));
        store.abandon();
        Object.assign(want, expected(base + 10), { [`k${base + 100}`]: `v${base + 100}` });
        expect(await contents()).toEqual(want);
      }
    });
  }

  it('recovers from snapshot.bak and the WAL it needs when the snapshot is corrupt', async () => {
    const store = await Store.open({ dataDir: dir, nodeId: NODE });
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => store.append(setOp(round * 5 + i + 1))),
      );
      await store.snapshot();
    }
    await store.append(setOp(99));
    await store.close({ snapshot: false });
    const snap = path.join(dir, 'snapshot');
    const buf = await readFile(snap);
    buf[buf.length - 2] = buf[buf.length - 2]! ^ 0xff;
    await writeFile(snap, buf);
    expect(await contents()).toEqual({ ...expected(15), k99: 'v99' });
  });

  it('keeps acks, members and nextSeq across a snapshot', async () => {
    const store = await Store.open({ dataDir: dir, nodeId: NODE });
    await store.append(setOp(5));
    await store.append({ type: 'add-peer', peer: 9 });
    store.state.raiseAcks(new Map([[9, 42]]));
    await store.snapshot();
    await store.close({ snapshot: false });
    const again = await Store.open({ dataDir: dir, nodeId: NODE });
    expect(again.recovery.fromSnapshot).toBe(true);
    expect([...again.state.members]).toEqual([9]);
    expect(again.state.ack(9)).toBe(42);
    expect(again.state.nextSeq).toBe(6);
    await again.close({ snapshot: false });
  });
});
