import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileRecordOf } from '../../test/helpers/records.js';
import { tempDir, waitFor } from '../../test/helpers/tmp.js';
import { Replica } from '../replica/index.js';
import { kvFile } from './context.js';
import { FileSync, type FileEvent } from './engine.js';
import { IGNORE_FILE } from './ignore.js';
import { admitFileEntry, keyOf } from './paths.js';
import { encodeRecord } from './record.js';
import type { Scanner } from './scanner.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('filesync-engine-')));
afterEach(() => cleanup());

describe('FileSync.close', () => {
  it('leaves applies still queued for the next start, without an error per path', async () => {
    const dataDir = path.join(dir, 'data');
    const root = path.join(dir, 'root');
    const open = async (): Promise<[Replica, FileSync, FileEvent[]]> => {
      const replica = await Replica.start({ dataDir, port: 0, node: { admit: admitFileEntry } });
      const fs = await FileSync.start({ root, dataDir, replica, watch: false });
      const events: FileEvent[] = [];
      fs.on('event', (e) => events.push(e));
      return [replica, fs, events];
    };
    const [replica, fs, events] = await open();
    // 200 files from a peer that is not connected: no one can serve their content, so 64
    // applies wait on peers and the rest queue behind them.
    const peer = 4242;
    const content = Buffer.from('nobody can serve this');
    const value = encodeRecord(fileRecordOf(content, 1));
    const entries = Array.from({ length: 200 }, (_, i) => ({
      key: keyOf(`f${i}`),
      value,
      meta: { node: peer, seq: i + 1, ts: Date.now() },
    }));
    await replica.node.merge(entries, peer);
    await waitFor(() => fs.progress.applying > 0 && fs.progress.applyQueued > 0, 'applies');
    await fs.close();
    await replica.close();
    expect(events.filter((e) => e.kind === 'error')).toEqual([]);

    // The next start finds the KV ahead of the disk for every one of them and queues it again.
    const [replica2, fs2] = await open();
    try {
      const { applying, applyQueued } = fs2.progress;
      expect(applying + applyQueued).toBe(200);
    } finally {
      await fs2.close();
      await replica2.close();
    }
  });
});

describe('the ignore file', () => {
  it('leaves what it ignores everywhere, and fetches again what was removed meanwhile', async () => {
    const dataDir = path.join(dir, 'data');
    const root = path.join(dir, 'root');
    await mkdir(path.join(root, 'big'), { recursive: true });
    await writeFile(path.join(root, 'big', 'x.bin'), 'too large for this laptop');
    const replica = await Replica.start({ dataDir, port: 0, node: { admit: admitFileEntry } });
    const fs = await FileSync.start({ root, dataDir, replica, watch: false });
    const record = (rel: string): string | undefined => kvFile(replica.node, rel)?.record.type;
    const scanner = (fs as unknown as { scanner: Scanner }).scanner;
    try {
      expect(record('big/x.bin')).toBe('file');
      await writeFile(path.join(root, IGNORE_FILE), 'big/\n');
      fs.hint(IGNORE_FILE);
      await waitFor(() => fs.ctx.ignore.ignores('big', true), 'the rules read');
      await rm(path.join(root, 'big'), { recursive: true }); // to free space here
      expect(await scanner.check('big/x.bin')).toBe(false);
      expect(await scanner.check('big')).toBe(false);
      expect([record('big/x.bin'), record('big')]).toEqual(['file', 'dir']); // no delete
      await writeFile(path.join(root, IGNORE_FILE), '');
      fs.hint(IGNORE_FILE);
      // Nobody else holds it here: its apply waits for a peer, its record stays.
      await waitFor(() => fs.progress.applying + fs.progress.parked > 0, 'big/x.bin fetched');
      expect(record('big/x.bin')).toBe('file');
    } finally {
      await fs.close();
      await replica.close();
    }
  });
});
