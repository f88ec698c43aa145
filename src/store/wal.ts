import CRC32 from 'crc-32';
import path from 'node:path';
import type { StateOp } from '../core/index.js';
import { logger } from '../log/index.js';
import { decodeOp, encodeOp, packr } from './codec.js';
import type { StoreDisk, StoreFile } from './disk.js';

const log = logger('store');

export const WAL_MAGIC = 0x4c564b57; // "WKVL" little-endian
export const WAL_FORMAT_VERSION = 1;
export const WAL_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 8;
/** No record may claim more: a value is ≤ 1 MiB and a key ≤ 4 KiB, so this is generous. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

export type FsyncPolicy = 'always' | 'never';

export interface WalOptions {
  disk: StoreDisk;
  /** Folder of the segment files. */
  dir: string;
  nodeId: number;
  /** 'always': fdatasync every group commit (the default); 'never': leave it to the OS. */
  fsync?: FsyncPolicy;
  /** Called synchronously, in append order, once a group's records are durable. */
  onDurable: (ops: readonly StateOp[]) => void;
}

export function segmentName(n: number): string {
  return `${String(n).padStart(16, '0')}.wal`;
}

export async function listSegments(disk: StoreDisk, dir: string): Promise<number[]> {
  const names = await disk.readdir(dir);
  return names
    .filter((n) => /^\d{16}\.wal$/.test(n))
    .map((n) => Number(n.slice(0, 16)))
    .sort((a, b) => a - b);
}

export function encodeHeader(nodeId: number): Buffer {
  const h = Buffer.alloc(WAL_HEADER_BYTES);
  h.writeUInt32LE(WAL_MAGIC, 0);
  h.writeUInt16LE(WAL_FORMAT_VERSION, 4);
  h.writeUInt32LE(nodeId, 8);
  h.writeInt32LE(CRC32.buf(h.subarray(0, 12)), 12);
  return h;
}

export function encodeRecord(op: StateOp): Buffer {
  const payload = packr.pack(encodeOp(op));
  const rec = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  rec.writeUInt32LE(payload.length, 0);
  rec.writeInt32LE(CRC32.buf(payload), 4);
  payload.copy(rec, RECORD_HEADER_BYTES);
  return rec;
}

export interface SegmentScan {
  ops: StateOp[];
  /** Bytes of the valid prefix (header included). */
  goodBytes: number;
  /** Why the scan stopped before the end of the file, if it did. */
  problem: string | null;
}

/** Parse a segment: every record up to the first bad one. Never throws on bad content. */
export function scanSegment(buf: Buffer, nodeId: number): SegmentScan {
  const ops: StateOp[] = [];
  if (buf.length < WAL_HEADER_BYTES) return { ops, goodBytes: 0, problem: 'header torn' };
  if (
    buf.readUInt32LE(0) !== WAL_MAGIC ||
    buf.readInt32LE(12) !== CRC32.buf(buf.subarray(0, 12)) ||
    buf.readUInt16LE(4) !== WAL_FORMAT_VERSION
  ) {
    return { ops, goodBytes: 0, problem: 'bad header (magic, version or checksum)' };
  }
  if (buf.readUInt32LE(8) !== nodeId) {
    return {
      ops,
      goodBytes: 0,
      problem: `header names node ${buf.readUInt32LE(8)}, not ${nodeId}`,
    };
  }
  let pos = WAL_HEADER_BYTES;
  while (pos < buf.length) {
    if (buf.length - pos < RECORD_HEADER_BYTES)
      return { ops, goodBytes: pos, problem: 'torn record header' };
    const len = buf.readUInt32LE(pos);
    // Bounds-check the claimed length before touching (or allocating for) the payload.
    if (len === 0 || len > MAX_RECORD_BYTES) {
      return { ops, goodBytes: pos, problem: `record length ${len} out of bounds` };
    }
    if (len > buf.length - pos - RECORD_HEADER_BYTES) {
      return { ops, goodBytes: pos, problem: 'torn record' };
    }
    const payload = buf.subarray(pos + RECORD_HEADER_BYTES, pos + RECORD_HEADER_BYTES + len);
    if (CRC32.buf(payload) !== buf.readInt32LE(pos + 4)) {
      return { ops, goodBytes: pos, problem: 'checksum mismatch' };
    }
    try {
      ops.push(decodeOp(packr.unpack(payload)));
    } catch (e) {
      return { ops, goodBytes: pos, problem: `undecodable record: ${(e as Error).message}` };
    }
    pos += RECORD_HEADER_BYTES + len;
  }
  return { ops, goodBytes: pos, problem: null };
}

/**
 * Replay segments numbered ≥ `from`, in order, and make what was replayed durable. The first
 * bad record ends the log: the file is cut there and later segments are removed, so nothing is
 * ever appended past a hole.
 */
export async function recoverSegments(
  disk: StoreDisk,
  dir: string,
  nodeId: number,
  from: number,
  apply: (op: StateOp) => void,
): Promise<{ replayed: number; lastSegment: number; cut: boolean }> {
  const segs = (await listSegments(disk, dir)).filter((n) => n >= from);
  let replayed = 0;
  let cut = false;
  let lastSegment = from - 1;
  for (const n of segs) {
    const file = path.join(dir, segmentName(n));
    if (cut) {
      log.warn('removing WAL segment past a cut', { segment: n });
      await disk.remove(file);
      continue;
    }
    const scan = scanSegment(await disk.readFile(file), nodeId);
    for (const op of scan.ops) apply(op);
    replayed += scan.ops.length;
    lastSegment = n;
    if (scan.problem !== null) {
      cut = true;
      log.warn('WAL tail cut at last good record', {
        segment: n,
        offset: scan.goodBytes,
        reason: scan.problem,
      });
      if (scan.goodBytes === 0) {
        // No header (a start killed right after creating it, or a disk error): removed, not
        // left empty. An empty segment is torn again at every recovery, and every segment
        // written after this start would then be removed as past the cut.
        await disk.remove(file);
        continue;
      }
      await disk.truncate(file, scan.goodBytes);
    }
    // What was replayed may be only in the page cache (a process killed before its group
    // commit's fsync), and a cut is not durable either: a power cut now could bring back a
    // shorter or torn segment, and the next recovery would then cut it again and remove the
    // segments written after this start, acknowledged writes and all.
    await disk.syncFile(file);
  }
  await disk.fsyncDir(dir);
  return { replayed, lastSegment, cut };
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * The append side of the log, with group commit: every record appended during one event-loop
 * turn goes out in one write and one fdatasync, and each `append` promise resolves only after
 * that. While a group is being synced the next one gathers, so throughput grows with load.
 */
export class WalWriter {
  private fh: StoreFile | null = null;
  private segment = 0;
  private offset = 0;
  private bufs: Buffer[] = [];
  private ops: StateOp[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private flushing: Promise<void> | null = null;
  private failed: Error | null = null;
  private readonly fsync: FsyncPolicy;
  /** Counters for status and benchmarks. */
  readonly stats = { groupCommits: 0, records: 0, bytes: 0 };

  constructor(private readonly opts: WalOptions) {
    this.fsync = opts.fsync ?? 'always';
  }

  get currentSegment(): number {
    return this.segment;
  }

  /** Bytes in the current segment. */
  get segmentBytes(): number {
    return this.offset;
  }

  /** Start a fresh segment numbered `n` (header written and synced). */
  async openSegment(n: number): Promise<void> {
    const { disk } = this.opts;
    const fh = await disk.open(path.join(this.opts.dir, segmentName(n)), 'wx');
    const header = encodeHeader(this.opts.nodeId);
    await fh.writev([header], 0);
    if (this.fsync === 'always') await fh.datasync();
    await disk.fsyncDir(this.opts.dir);
    const old = this.fh;
    this.fh = fh;
    this.segment = n;
    this.offset = header.length;
    if (old !== null) await old.close();
  }

  append(op: StateOp): Promise<void> {
    return this.appendMany([op]);
  }

  /** Append several ops; one promise for all, resolved when every one is durable. */
  appendMany(ops: readonly StateOp[]): Promise<void> {
    if (this.failed !== null) return Promise.reject(this.failed);
    if (this.fh === null) return Promise.reject(new Error('WAL is closed'));
    if (ops.length === 0) return Promise.resolve();
    for (const op of ops) this.bufs.push(encodeRecord(op));
    return new Promise<void>((resolve, reject) => {
      for (const op of ops) this.ops.push(op);
      this.waiters.push({ resolve, reject });
      this.scheduleKick();
    });
  }

  private kick(): void {
    this.scheduled = false;
    if (this.flushing === null && this.bufs.length > 0) {
      this.flushing = this.flushLoop().finally(() => {
        this.flushing = null;
        // Appends made by the resolved callers while the loop was finishing.
        this.scheduleKick();
      });
    }
  }

  private scheduleKick(): void {
    if (this.bufs.length > 0 && !this.scheduled && this.flushing === null) {
      this.scheduled = true;
      setImmediate(() => this.kick());
    }
  }

  private async flushLoop(): Promise<void> {
    while (this.bufs.length > 0 && this.failed === null) {
      const bufs = this.bufs;
      const ops = this.ops;
      const waiters = this.waiters;
      this.bufs = [];
      this.ops = [];
      this.waiters = [];
      try {
        const fh = this.fh!;
        let bytes = 0;
        for (const b of bufs) bytes += b.length;
        const bytesWritten = await fh.writev(bufs, this.offset);
        if (bytesWritten !== bytes)
          throw new Error(`short WAL write: ${bytesWritten} of ${bytes} bytes`);
        if (this.fsync === 'always') await fh.datasync();
        this.offset += bytes;
        this.stats.groupCommits++;
        this.stats.records += bufs.length;
        this.stats.bytes += bytes;
      } catch (e) {
        // A failed write leaves the file in an unknown state: stop accepting appends; the
        // next recovery cuts whatever tail is there.
        this.failed = e instanceof Error ? e : new Error(String(e));
        log.error('WAL write failed; the store refuses further writes', {
          error: this.failed.message,
        });
        for (const w of [...waiters, ...this.waiters]) w.reject(this.failed);
        this.bufs = [];
        this.ops = [];
        this.waiters = [];
        return;
      }
      this.opts.onDurable(ops);
      for (const w of waiters) w.resolve();
    }
  }

  /** Wait until everything appended so far is durable (or has failed). */
  async drain(): Promise<void> {
    while (this.bufs.length > 0 || this.flushing !== null || this.scheduled) {
      if (this.flushing !== null) await this.flushing;
      else this.kick();
    }
  }

  /**
   * Run `fn` with no group commit in flight and none starting until it returns: the state
   * then reflects exactly the records in segments ≤ the current one.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.drain();
    const run = fn();
    const guard = run.then(
      () => undefined,
      () => undefined,
    );
    this.flushing = guard.finally(() => {
      this.flushing = null;
      this.scheduleKick();
    });
    return run;
  }

  async close(): Promise<void> {
    await this.drain();
    const fh = this.fh;
    this.fh = null;
    if (fh !== null) await fh.close();
  }

  /** Abandon without flushing: used by crash tests to model a process that died here. */
  abandon(): void {
    const fh = this.fh;
    this.fh = null;
    this.failed = new Error('WAL abandoned');
    void fh?.close();
  }
}
