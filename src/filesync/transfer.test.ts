import { randomBytes } from 'node:crypto';
import { lstatSync, utimesSync, writeSync, openSync, closeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { realClock } from './clock.js';
import { realDisk } from './disk.js';
import { fileRecordOf } from '../../test/helpers/records.js';
import { tempDir, waitFor } from '../../test/helpers/tmp.js';
import type { BlockRequest, SyncDriver } from '../sync/index.js';
import { fakeDriver, hung, type Calls, type Serve } from '../../test/helpers/fake-driver.js';
import { DiskIndex } from './disk-index.js';
import { hashFile, sha256 } from './hasher.js';
import { keyOf } from './paths.js';
import { permBits } from './stat.js';
import { BLOCK_BYTES, type FileRecord, type Version } from './record.js';
import { RealParents } from './safe-fs.js';
import {
  DOWNLOAD_HELD_MAX_BYTES,
  SupersededError,
  Transfer,
  type TransferVersions,
} from './transfer.js';
import { DownloadFile } from './direct-io.js';
import { refuseDirect } from '../../test/helpers/direct-io.js';

const content = Buffer.from('the relay has not fetched this yet');
const record: FileRecord = fileRecordOf(content);
const v: Version = [1, 7];
const key = keyOf('f.txt');
const req: BlockRequest = { t: 'block', rid: 1, key, node: 1, seq: 7, index: 0, hash: record.hash };

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('transfer-')));
afterEach(() => cleanup());

/** What a test may change of a Transfer's surroundings after making it. */
interface Knobs extends TransferVersions {
  openDownload: (tmp: string) => Promise<DownloadFile>;
}
const knobs = new WeakMap<Transfer, Knobs>();
const knobsOf = (t: Transfer): Knobs => knobs.get(t)!;

/** A Transfer in this test's temp dir, talking to `driver`; its versions say "current". */
async function transferOver(
  driver: SyncDriver,
  index = new DiskIndex(path.join(dir, 'index')),
): Promise<Transfer> {
  const root = path.join(dir, 'root');
  const k: Knobs = {
    current: () => true,
    expects: () => false,
    incoming: () => undefined,
    sourceOf: () => undefined,
    openDownload: (tmp) => DownloadFile.open(tmp),
  };
  const t = new Transfer({
    root,
    tmpDir: path.join(dir, 'tmp'),
    index,
    driver,
    parents: new RealParents(root, realDisk),
    versions: {
      current: (key, v) => k.current(key, v),
      expects: (key, v) => k.expects(key, v),
      incoming: (key) => k.incoming(key),
      sourceOf: (key) => k.sourceOf(key),
    },
    disk: { ...realDisk, openDownload: (tmp) => k.openDownload(tmp) },
    clock: realClock,
  });
  knobs.set(t, k);
  await t.init();
  return t;
}

/** A large file made of `parts` (its blocks) and its record. */
function multiBlock(parts: Buffer[]): [Buffer, FileRecord] {
  const whole = Buffer.concat(parts);
  return [whole, { ...record, size: whole.length, hash: sha256(whole), blocks: parts.map(sha256) }];
}

async function relay(
  upstream: Map<string, Uint8Array>,
  peers = [1],
  hang = false,
): Promise<[Transfer, Serve, Calls]> {
  const { driver, serve, calls } = fakeDriver(upstream, peers, hang);
  return [await transferOver(driver), serve(), calls];
}

describe('a relay serving a version it is still fetching', () => {
  it('holds the request until its own download has the block, then serves it', async () => {
    const [t, serve] = await relay(new Map([[record.hash, content]]));
    knobsOf(t).expects = () => true;
    let answered: Uint8Array | null | undefined;
    const asked = serve(3, req).then((d) => (answered = d));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBeUndefined(); // held, not "not here"
    const tmp = await t.fetch(key, record, v);
    await asked;
    expect(Buffer.from(answered!)).toEqual(content);
    expect(await readFile(tmp)).toEqual(content);
  });

  it('answers "not here" at once when it does not expect that version', async () => {
    const [t, serve] = await relay(new Map());
    knobsOf(t).expects = () => false;
    expect(await serve(3, req)).toBeNull();
  });

  it('holds a request for the version it is still logging (relayed before it was durable)', async () => {
    const [t, serve] = await relay(new Map([[record.hash, content]]));
    let incoming = true;
    knobsOf(t).incoming = () => (incoming ? v : undefined);
    let answered: Uint8Array | null | undefined;
    const asked = serve(3, req).then((d) => (answered = d));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBeUndefined(); // held: the version is on its way here
    incoming = false;
    knobsOf(t).expects = () => true; // logged, queued for apply
    t.progressed(key);
    await t.fetch(key, record, v);
    await asked;
    expect(Buffer.from(answered!)).toEqual(content);
  });

  it('answers "not here" soon when a version it was logging never arrives (no progress follows)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const [t, serve] = await relay(new Map());
      let incoming = true;
      knobsOf(t).incoming = () => (incoming ? v : undefined);
      let answered: Uint8Array | null | undefined;
      const asked = serve(3, req).then((d) => (answered = d));
      await vi.advanceTimersByTimeAsync(100);
      expect(answered).toBeUndefined(); // still being logged: held
      incoming = false; // it lost to a version landing in the same commit: never applied here
      await vi.advanceTimersByTimeAsync(100); // far below SERVE_WAIT_MS
      expect(answered).toBeNull();
      await asked;
    } finally {
      vi.useRealTimers();
    }
  });

  it('asks the peer that sent it the version first (a chain: the other one may hold the ask)', async () => {
    const [t, , calls] = await relay(new Map([[record.hash, content]]), [1, 3]);
    knobsOf(t).sourceOf = () => 3;
    await t.fetch(key, record, v);
    expect(calls.peers).toEqual([3]);
  });

  it('gives up when the apply ends without the block (progress, then nothing to serve)', async () => {
    const [t, serve] = await relay(new Map());
    let expecting = true;
    knobsOf(t).expects = () => expecting;
    const asked = serve(3, req);
    await new Promise((r) => setImmediate(r));
    expecting = false; // the apply was dropped (ignored path, newer version, …)
    t.progressed(key);
    expect(await asked).toBeNull();
  });

  it('stops asking for a version that was superseded while no peer could serve it', async () => {
    const [t] = await relay(new Map()); // nobody holds the old content any more
    knobsOf(t).current = () => false; // a newer version of the path has arrived
    await expect(t.fetch(key, record, v)).rejects.toBeInstanceOf(SupersededError);
  });

  it('never holds a request from a peer it is itself asking for that key (no mutual wait)', async () => {
    const [t, serve] = await relay(new Map(), [1, 3], true);
    knobsOf(t).expects = () => true;
    void t.fetch(key, record, v).catch(() => undefined); // asks 1 (nothing), then 3 (hangs)
    await waitFor(() => hung.asking, 'the request to peer 3');
    let answer: Uint8Array | null | undefined;
    void serve(3, req).then((d) => (answer = d));
    // Answered well before SERVE_WAIT_MS (5 s), which is when a held request would give up.
    await waitFor(() => answer !== undefined, 'an answer without holding', 2000);
    expect(answer).toBeNull();
  });

  it('fetches the small files asked for in one turn with one batch message', async () => {
    const files = Array.from({ length: 20 }, (_, i) => Buffer.from(`file ${i}`));
    const [t, , calls] = await relay(new Map(files.map((f) => [sha256(f), f])));
    const tmps = await Promise.all(
      files.map((f, i) =>
        t.fetch(keyOf(`f${i}`), { ...record, size: f.length, hash: sha256(f) }, [1, i + 1]),
      ),
    );
    for (const [i, tmp] of tmps.entries()) expect(await readFile(tmp)).toEqual(files[i]);
    expect(calls).toEqual({ batches: 1, singles: 0, peers: [1] });
  });

  it('gives up waiting on peers at once when closed (a stopping node is not held 10 s)', async () => {
    const [t, , calls] = await relay(new Map()); // nobody can serve it; the version stays current
    let failed: unknown;
    const fetching = t.fetch(key, record, v).catch((e: unknown) => (failed = e));
    await waitFor(() => calls.singles >= 2, 'a retry'); // into the patient retry loop
    t.close();
    await waitFor(() => failed !== undefined, 'the fetch to give up', 2000); // patience is 10 s
    await fetching;
    expect(String(failed)).toContain('shutting down');
  });

  it('serves a small file it just downloaded from memory, without going to the disk', async () => {
    const [t, serve] = await relay(new Map([[record.hash, content]]));
    knobsOf(t).expects = () => false;
    const tmp = await t.fetch(key, record, v);
    await rm(tmp); // nothing on disk holds it any more (and nothing indexes it)
    expect(Buffer.from((await serve(3, req))!)).toEqual(content);
  });
});

describe('block hash checks', () => {
  it('a downloader turns down a block that fails its hash and never writes it', async () => {
    const forged = Buffer.alloc(content.length, 0x2a);
    const { driver, calls } = fakeDriver(new Map([[record.hash, forged]]));
    const t = await transferOver(driver);
    knobsOf(t).current = () => calls.singles < 2; // superseded after two refused answers: stop asking
    await expect(t.fetch(key, record, v)).rejects.toBeInstanceOf(SupersededError);
    expect(calls.singles + calls.batches).toBeGreaterThanOrEqual(2);
    for (const n of await readdir(path.join(dir, 'tmp')))
      expect(await readFile(path.join(dir, 'tmp', n))).not.toEqual(forged);
    expect(t.counters.blocksRemote).toBe(0);
  });

  it('serves a large block of an indexed file unchanged since hashed without hashing it again', async () => {
    const root = path.join(dir, 'root');
    await mkdir(root, { recursive: true });
    const abs = path.join(root, 'big.bin');
    await writeFile(abs, randomBytes(BLOCK_BYTES + 100));
    const mtime = 1_700_000_000; // whole seconds: utimes gives back exactly this mtimeMs
    utimesSync(abs, mtime, mtime);
    const h = await hashFile(abs);
    const st = lstatSync(abs);
    const index = new DiskIndex(path.join(dir, 'index'));
    index.set('big.bin', {
      type: 'file',
      size: h.size,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      mode: permBits(st.mode),
      hash: h.hash,
      blocks: h.blocks,
      target: null,
      version: [1, 7],
      ancestors: [],
    });
    const { driver, serve } = fakeDriver(new Map());
    await transferOver(driver, index);
    const ask: BlockRequest = { ...req, key: keyOf('big.bin'), hash: h.blocks[0]! };
    // Rewritten in place behind the index's back, stat put back as it was: the index vouches
    // for the block and it goes out unchecked (the asker's own check is what catches this).
    const fd = openSync(abs, 'r+');
    writeSync(fd, Buffer.alloc(10, 0x2a), 0, 10, 0);
    closeSync(fd);
    utimesSync(abs, mtime, mtime);
    const sent = await serve()(3, ask);
    expect(sent).not.toBeNull();
    expect(sha256(sent!)).not.toBe(h.blocks[0]);
    // Once its stat moved, every block served from it is hash-checked: this one is not sent.
    utimesSync(abs, mtime + 1, mtime + 1);
    expect(await serve()(3, ask)).toBeNull();
  });
});

describe('durability of a large download', () => {
  it('fails when a writeback started along the way fails, though the final fsync succeeds', async () => {
    // Linux reports a writeback error to a descriptor once: the final fsync would not see it.
    const parts = Array.from({ length: 33 }, () => randomBytes(BLOCK_BYTES));
    const [whole, big] = multiBlock(parts);
    const [t] = await relay(new Map(parts.map((b) => [sha256(b), b])));
    // The early writeback is the buffered path's (an O_DIRECT download has nothing to write back).
    knobsOf(t).openDownload = (p) => DownloadFile.open(p, refuseDirect);
    const probe = await open(path.join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    const spy = vi.spyOn(proto, 'datasync').mockRejectedValueOnce(eio);
    try {
      await expect(t.fetch(keyOf('big.bin'), big, v)).rejects.toBe(eio);
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    // Without the failure the same download lands whole.
    const tmp = await t.fetch(keyOf('big.bin'), big, [1, 8]);
    expect((await readFile(tmp)).equals(whole)).toBe(true);
  });
});

describe('large downloads past the page cache (O_DIRECT)', () => {
  it('serves the last block of a download in progress at its own length, not the padded one', async () => {
    // Not a multiple of O_DIRECT's alignment: the last block is written padded, then truncated.
    const parts = [BLOCK_BYTES, BLOCK_BYTES, 1000].map((n) => randomBytes(n));
    const [whole, big] = multiBlock(parts);
    const [t, serve] = await relay(new Map(parts.map((b) => [sha256(b), b])));
    knobsOf(t).expects = () => true;
    const bigKey = keyOf('big.bin');
    const last = { ...req, key: bigKey, index: 2, hash: big.blocks[2]! };
    const asked = serve(3, last); // held until the relay's own download has block 2
    const tmp = await t.fetch(bigKey, big, v);
    expect(Buffer.from((await asked)!).equals(parts[2]!)).toBe(true);
    expect((await readFile(tmp)).equals(whole)).toBe(true);
    expect(t.counters.bytesDirect).toBe(whole.length);
  });

  it('lands the same bytes where the filesystem refuses O_DIRECT', async () => {
    const parts = [BLOCK_BYTES, 5000].map((n) => randomBytes(n));
    const [whole, big] = multiBlock(parts);
    const [t] = await relay(new Map(parts.map((b) => [sha256(b), b])));
    knobsOf(t).openDownload = (p) => DownloadFile.open(p, refuseDirect);
    const tmp = await t.fetch(keyOf('big.bin'), big, v);
    expect((await readFile(tmp)).equals(whole)).toBe(true);
    expect(t.counters.bytesDirect).toBe(0);
  });
});

describe('a relay passing a large download on', () => {
  it('serves the blocks it just landed from memory, not read back from its temp file', async () => {
    const parts = [BLOCK_BYTES, BLOCK_BYTES, 1000].map((n) => randomBytes(n));
    const [whole, big] = multiBlock(parts);
    const [t, serve] = await relay(new Map(parts.map((b) => [sha256(b), b])), [1, 3]);
    knobsOf(t).expects = () => true;
    const bigKey = keyOf('big.bin');
    const asked = [0, 1, 2].map((index) =>
      serve(3, { ...req, key: bigKey, index, hash: big.blocks[index]! }),
    );
    const tmp = await t.fetch(bigKey, big, v);
    for (const [i, a] of asked.entries())
      expect(Buffer.from((await a)!).equals(parts[i]!)).toBe(true);
    expect((await readFile(tmp)).equals(whole)).toBe(true);
    // The two 1 MiB blocks from the ring; the 1000-byte last one from the recent small blocks,
    // which still have it once the download is over (nothing else here could serve it now).
    expect(t.counters.bytesRelayedFromMemory).toBe(2 * BLOCK_BYTES);
    knobsOf(t).expects = () => false;
    const again = await serve(3, { ...req, key: bigKey, index: 2, hash: big.blocks[2]! });
    expect(Buffer.from(again!).equals(parts[2]!)).toBe(true);
  });

  it('keeps nothing while its only peer is the one the blocks came from', async () => {
    const parts = [BLOCK_BYTES, 1000].map((n) => randomBytes(n));
    const [, big] = multiBlock(parts);
    const [t, serve] = await relay(new Map(parts.map((b) => [sha256(b), b])));
    knobsOf(t).expects = () => true;
    const bigKey = keyOf('big.bin');
    const asked = serve(3, { ...req, key: bigKey, index: 0, hash: big.blocks[0]! });
    await t.fetch(bigKey, big, v);
    expect(Buffer.from((await asked)!).equals(parts[0]!)).toBe(true); // read back
    expect(t.counters.bytesRelayedFromMemory).toBe(0);
  });

  it('does not hash the assembled file again: each block was checked against the record', async () => {
    const parts = [BLOCK_BYTES, 1000].map((n) => randomBytes(n));
    const [whole, big] = multiBlock(parts);
    const [t] = await relay(new Map(parts.map((b) => [sha256(b), b])));
    // A whole-file hash the blocks contradict (only its author could have made it so).
    const tmp = await t.fetch(keyOf('big.bin'), { ...big, hash: sha256(Buffer.from('x')) }, v);
    expect((await readFile(tmp)).equals(whole)).toBe(true);
  });
});

describe('downloads of many large files at once', () => {
  it('hold at most DOWNLOAD_HELD_MAX_BYTES of blocks together', async () => {
    const size = 2 * BLOCK_BYTES + 1;
    const files = Array.from({ length: 12 }, (_, i) => Buffer.alloc(size, i + 1));
    const blocksOf = (f: Buffer): Buffer[] =>
      [0, 1, 2].map((i) => f.subarray(i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES));
    const upstream = new Map<string, Uint8Array>();
    for (const f of files) for (const b of blocksOf(f)) upstream.set(sha256(b), b);
    let outstanding = 0; // bytes asked for and not answered yet
    let most = 0;
    const driver = {
      serveBlocks: () => undefined,
      linkedPeers: [1],
      peerAcksOf: () => undefined,
      fetchBlock: async (_peer: number, req: { hash: string }) => {
        const bytes = upstream.get(req.hash)?.length ?? 0;
        most = Math.max(most, (outstanding += bytes));
        await new Promise((r) => setTimeout(r, 5)); // a peer takes a moment
        outstanding -= bytes;
        return upstream.get(req.hash) ?? null;
      },
    } as unknown as SyncDriver;
    const t = await transferOver(driver);
    const tmps = await Promise.all(
      files.map((f, i) => {
        const blocks = blocksOf(f).map((b) => sha256(b));
        const r: FileRecord = { ...record, size, hash: sha256(f), blocks };
        return t.fetch(keyOf(`big${i}`), r, [1, i + 1]);
      }),
    );
    for (const [i, tmp] of tmps.entries())
      expect((await readFile(tmp)).equals(files[i]!)).toBe(true);
    expect(most).toBeGreaterThan(BLOCK_BYTES); // several at once, so the bound is what held it
    expect(most).toBeLessThanOrEqual(DOWNLOAD_HELD_MAX_BYTES);
    expect(t.held.held).toBe(0);
  });
});
