import { describe, expect, it } from 'vitest';
import { fakeDriver } from '../../test/helpers/fake-driver.js';
import { ManualClock } from '../../test/helpers/manual-clock.js';
import { fileRecordOf } from '../../test/helpers/records.js';
import { DiskIndex } from './disk-index.js';
import { sha256 } from './hasher.js';
import { MemDisk } from './mem-disk.js';
import { keyOf } from './paths.js';
import { BLOCK_BYTES, type FileRecord, type Version } from './record.js';
import { RealParents } from './safe-fs.js';
import { Transfer } from './transfer.js';

const ROOT = '/r';
const TMP = '/r/.filesync/tmp';
const v: Version = [1, 7];

/** Three blocks: the first two also held by `old` on the disk, the last only by peer 1. */
const parts = [Buffer.alloc(BLOCK_BYTES, 1), Buffer.alloc(BLOCK_BYTES, 2), Buffer.from('tail')];
const whole = Buffer.concat(parts);
const record: FileRecord = {
  ...fileRecordOf(whole),
  size: whole.length,
  hash: sha256(whole),
  blocks: parts.map(sha256),
};

/** A Transfer on a MemDisk, its only peer serving `upstream` by hash. */
function onMem(upstream: Map<string, Uint8Array>): {
  t: Transfer;
  disk: MemDisk;
  index: DiskIndex;
  clock: ManualClock;
} {
  const disk = new MemDisk(ROOT);
  const index = new DiskIndex('/data/index');
  const clock = new ManualClock();
  const t = new Transfer({
    root: ROOT,
    tmpDir: TMP,
    index,
    driver: fakeDriver(upstream).driver,
    parents: new RealParents(ROOT, disk),
    versions: {
      current: () => true,
      expects: () => false,
      incoming: () => undefined,
      sourceOf: () => undefined,
    },
    disk,
    clock,
  });
  return { t, disk, index, clock };
}

describe('Transfer on the in-memory disk', () => {
  it('takes blocks a local file holds from the disk, the rest from a peer', async () => {
    const { t, disk, index } = onMem(new Map([[sha256(parts[2]!), parts[2]!]]));
    await t.init();
    const old = Buffer.concat([parts[0]!, parts[1]!]);
    disk.writeFile('/r/old', old);
    const st = disk.lstat('/r/old');
    const blocks = [sha256(parts[0]!), sha256(parts[1]!)];
    index.set('old', {
      type: 'file',
      size: old.length,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      mode: st.mode,
      hash: sha256(old),
      blocks,
      target: null,
      version: [2, 1],
      ancestors: [],
    });
    const tmp = await t.fetch(keyOf('new'), record, v);
    expect(disk.readFile(tmp).equals(whole)).toBe(true);
    expect(t.counters.blocksLocal).toBe(2);
    expect(t.counters.blocksRemote).toBe(1);
  });

  it('fails a download the disk refuses (ENOSPC), leaving nothing listed as under way', async () => {
    const all = new Map(parts.map((p) => [sha256(p), p]));
    const { t, disk } = onMem(all);
    await t.init();
    disk.fail('downloadWrite', TMP, 'ENOSPC');
    await expect(t.fetch(keyOf('new'), record, v)).rejects.toThrow(
      expect.objectContaining({ code: 'ENOSPC' }),
    );
    expect(t.active()).toEqual([]);
    // The next try resumes the same temp file and completes it.
    const tmp = await t.fetch(keyOf('new'), record, v);
    expect(disk.readFile(tmp).equals(whole)).toBe(true);
  });

  it('clears downloads older than a day at start, on its clock', async () => {
    const { t, disk, clock } = onMem(new Map());
    disk.mkdir(TMP, { recursive: true });
    disk.writeFile(`${TMP}/stale`, 'x');
    disk.nowMs += 24 * 3600_000 + 1;
    disk.writeFile(`${TMP}/fresh`, 'y');
    clock.advance(disk.nowMs);
    await t.init();
    expect(disk.readdir(TMP)).toEqual(['fresh']);
  });
});
