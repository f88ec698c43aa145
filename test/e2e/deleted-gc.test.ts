import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSync } from '../../src/filesync/engine.js';
import { admitFileEntry, FILE_PREFIX, keyOf } from '../../src/filesync/paths.js';
import { decodeRecord } from '../../src/filesync/record.js';
import { Replica } from '../../src/replica/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

/**
 * Deleted-file records are collected like tombstones once every member has them (GC ages
 * shortened), so a folder's metadata is bounded by the live tree plus recent deletes; a node
 * whose delete is not done on its disk yet keeps its record until it is, and nothing collected
 * comes back, through repair or a restart.
 */
let dir: string;
let cleanup: () => Promise<void>;
interface Mirror {
  replica: Replica;
  fs: FileSync;
  root: string;
}
const running = new Set<Mirror>();
beforeEach(async () => ({ dir, cleanup } = await tempDir('filesync-deleted-gc-')));
afterEach(async () => {
  for (const m of running) await stop(m);
  await cleanup();
});

async function start(name: string, peers: string[] = []): Promise<Mirror> {
  const root = path.join(dir, name);
  const replica = await Replica.start({
    dataDir: path.join(root, '.filesync'),
    port: 0,
    peers,
    node: { admit: admitFileEntry },
    sync: { roundIntervalMs: 100, gcIntervalMs: 100, tombstoneMinAgeMs: 300 },
    transport: { reconnectBaseMs: 50, reconnectMaxMs: 300 },
  });
  const fs = await FileSync.start({ root, dataDir: path.join(root, '.filesync'), replica });
  const m = { replica, fs, root };
  running.add(m);
  return m;
}

async function stop(m: Mirror): Promise<void> {
  running.delete(m);
  await m.fs.close();
  await m.replica.close();
}

const names = Array.from({ length: 30 }, (_, i) => `d/f${i}.txt`);
const fileKeys = (m: Mirror): string[] =>
  [...m.replica.node.entries(FILE_PREFIX, { tombstones: true })].map((e) => e.key);
const onDisk = (m: Mirror, rel: string): boolean => existsSync(path.join(m.root, rel));
const deleteRecordAt = (m: Mirror, rel: string): boolean => {
  const v = m.replica.node.get(keyOf(rel));
  return v !== undefined && decodeRecord(v)?.type === 'deleted';
};

describe('deleted-file records', () => {
  it('are collected once every member has them, and a node whose delete waits keeps its own', async () => {
    const a = await start('a');
    const b = await start('b', [a.replica.transport.advertise]);
    await mkdir(path.join(a.root, 'd'));
    for (const n of names) await writeFile(path.join(a.root, n), n);
    await waitFor(() => names.every((n) => onDisk(b, n)), 'b to get every file', 30_000);

    // b cannot move anything to its trash (a file where the trash dir goes): its deletes fail
    // and wait for a retry, and meanwhile it must keep the records.
    const trash = path.join(b.root, '.filesync', 'trash');
    await rm(trash, { recursive: true, force: true });
    await writeFile(trash, 'in the way');
    for (const n of names) await rm(path.join(a.root, n));
    await waitFor(
      () => names.every((n) => a.replica.node.getEntry(keyOf(n)) === undefined),
      'a to collect every delete record',
      30_000,
    );
    expect(names.every((n) => deleteRecordAt(b, n) && onDisk(b, n))).toBe(true);
    expect(b.fs.parkedPaths).toBeGreaterThan(0);

    // The trash is back: b applies its deletes, then collects the records too.
    await rm(trash);
    await waitFor(
      () => names.every((n) => !onDisk(b, n) && b.replica.node.getEntry(keyOf(n)) === undefined),
      'b to apply the deletes and collect the records',
      60_000,
    );
    expect(names.some((n) => onDisk(a, n))).toBe(false);

    // A restart replays the collections from the log: nothing comes back on either node, and
    // the two agree (digest) with the deleted paths gone from both.
    await stop(b);
    const b2 = await start('b', [a.replica.transport.advertise]);
    const more = b2.replica.driver.counters.roundsOk + 10;
    await waitFor(
      () => b2.replica.driver.counters.roundsOk >= more,
      'ten rounds after the restart',
      30_000,
    );
    expect(fileKeys(a)).toEqual(fileKeys(b2));
    expect(names.some((n) => a.replica.node.getEntry(keyOf(n)) !== undefined)).toBe(false);
    expect(names.some((n) => onDisk(a, n) || onDisk(b2, n))).toBe(false);
    await waitFor(
      () => a.replica.node.state.digest === b2.replica.node.state.digest,
      'the digests to agree',
      30_000,
    );

    // A path made again after its delete was collected is new, not "already seen".
    await writeFile(path.join(b2.root, names[0]!), 'again');
    await waitFor(() => onDisk(a, names[0]!), 'the re-created file to reach a', 30_000);
  }, 120_000);
});
