import path from 'node:path';
import { Codec } from '../codec/index.js';
import { logger } from '../log/index.js';
import type { StoreDisk, StoreFile } from '../store/index.js';

const log = logger('filesync');
const packr = new Codec({ useRecords: false, mapsAsObjects: true });
const PREFIX = 'index.journal-';
/** A record longer than this is a torn or foreign length: replay stops there. */
const MAX_RECORD_BYTES = 1024 * 1024;

/**
 * Changes to the disk index since its last save, appended as they happen: the index is saved
 * whole only every few seconds, and a node killed in between started with an index behind its
 * disk, took what it had received for local edits and published them again in its own name
 * (stale `prev`: conflict copies of its own versions, deletes undone). Written at the end of
 * each event-loop turn without fsync: a killed process loses nothing the kernel took, and a
 * power cut only costs the rescan an index rebuild costs. One file per save generation: a save
 * starts a new one and deletes the older ones once it is durable. Through the data dir's disk
 * port, so the simulator kills nodes between its writes too.
 */
export class IndexJournal {
  private gen: number;
  private handle: StoreFile | null = null;
  private pending: Buffer[] = [];
  private flushing = false;
  /** The steps in order: each waits for the one before (opens, rotations, the close). */
  private tail: Promise<void> = Promise.resolve();
  /** Steps queued and not done: rows are written inline only when there are none. */
  private steps = 0;

  private constructor(
    private readonly dir: string,
    private readonly disk: StoreDisk,
    gen: number,
  ) {
    this.gen = gen;
    this.enqueue(async () => void (this.handle = await disk.open(this.file(gen), 'w')));
  }

  /** Replay every journal in `dir`, oldest first, then start a new one. */
  static async open(
    dir: string,
    disk: StoreDisk,
    apply: (row: unknown[]) => void,
  ): Promise<IndexJournal> {
    const gens = await generations(dir, disk);
    for (const g of gens) replay(await disk.readFile(path.join(dir, `${PREFIX}${g}`)), apply);
    return new IndexJournal(dir, disk, (gens.at(-1) ?? 0) + 1);
  }

  private file(gen: number): string {
    return path.join(this.dir, `${PREFIX}${gen}`);
  }

  /**
   * A write failed: logged, and the next ones still tried. The journal only saves a rescan's
   * work after a kill; the index itself is saved whole again within seconds.
   */
  private enqueue(step: () => Promise<void>): Promise<void> {
    this.steps++;
    const run = this.tail.then(step).finally(() => this.steps--);
    this.tail = run.catch((e: unknown) =>
      log.warn('disk index journal write failed', { error: String(e) }),
    );
    return this.tail;
  }

  append(row: unknown[]): void {
    const body = packr.pack(row);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    this.pending.push(head, Buffer.from(body));
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  /**
   * Hand what was appended to the disk; resolves once it (and all before it) was written. The
   * write is inline when nothing is queued before it: the applier waits for its landing notes
   * (DiskIndex.noteLanding), and a write through the thread pool waited behind every fsync of
   * the applies in flight (a 10,000-file sync took twice as long).
   */
  flush(): Promise<void> {
    this.flushing = false;
    if (this.pending.length === 0) return this.tail;
    const buf = Buffer.concat(this.pending);
    this.pending = [];
    if (this.steps === 0 && this.handle !== null) {
      this.writeNow(buf);
      return Promise.resolve();
    }
    return this.enqueue(() => Promise.resolve(this.writeNow(buf)));
  }

  private writeNow(buf: Buffer): void {
    try {
      this.handle?.appendSync(buf);
    } catch (e) {
      log.warn('disk index journal write failed', { error: String(e) });
    }
  }

  /**
   * A save is about to copy the index: what is appended from this call on goes to a new
   * journal. Resolves to the generation the copy covers.
   */
  async rotate(): Promise<number> {
    void this.flush();
    const done = this.gen;
    const next = this.file(++this.gen);
    await this.enqueue(async () => {
      const old = this.handle;
      this.handle = null;
      await old?.close();
      this.handle = await this.disk.open(next, 'w');
    });
    return done;
  }

  /** The save that rotated away from `upTo` is durable: journals up to it are covered. */
  async dropUpTo(upTo: number): Promise<void> {
    for (const g of await generations(this.dir, this.disk))
      if (g <= upTo) await this.disk.remove(this.file(g));
  }

  async close(): Promise<void> {
    void this.flush();
    await this.enqueue(async () => {
      await this.handle?.close();
      this.handle = null;
    });
  }
}

async function generations(dir: string, disk: StoreDisk): Promise<number[]> {
  let names: string[];
  try {
    names = await disk.readdir(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)))
    .map((n) => Number(n.slice(PREFIX.length)))
    .sort((a, b) => a - b);
}

/** Apply each whole record of one journal; a torn tail (the process died mid-write) ends it. */
function replay(buf: Buffer, apply: (row: unknown[]) => void): void {
  for (let at = 0; at + 4 <= buf.length;) {
    const n = buf.readUInt32BE(at);
    if (n > MAX_RECORD_BYTES || at + 4 + n > buf.length) return;
    let row: unknown;
    try {
      row = packr.unpack(buf.subarray(at + 4, at + 4 + n));
    } catch {
      return;
    }
    if (Array.isArray(row)) apply(row);
    at += 4 + n;
  }
}
