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
  /**
   * Why the current journal file cannot be trusted (a write failed, maybe half done, or it
   * never opened): rows after it would be unreadable, so none are written until a save
   * rotates to a new file, and every flush until then fails.
   */
  private broken: Error | null = null;

  private constructor(
    private readonly dir: string,
    private readonly disk: StoreDisk,
    gen: number,
    /** Called once per failure: the owner saves the index whole soon (see rotate). */
    private readonly onBroken: () => void,
  ) {
    this.gen = gen;
    this.enqueue(() => this.openFile(gen));
  }

  private async openFile(gen: number): Promise<void> {
    try {
      this.handle = await this.disk.open(this.file(gen), 'w');
      this.broken = null;
    } catch (e) {
      this.breaks(e);
    }
  }

  private breaks(e: unknown): void {
    if (this.broken !== null) return;
    this.broken = e instanceof Error ? e : new Error(String(e));
    log.warn('disk index journal write failed; nothing more is journalled until a save', {
      error: String(e),
    });
    this.onBroken();
  }

  /** Replay every journal in `dir`, oldest first, then start a new one. */
  static async open(
    dir: string,
    disk: StoreDisk,
    apply: (row: unknown[]) => void,
    onBroken: () => void = () => undefined,
  ): Promise<IndexJournal> {
    const gens = await generations(dir, disk);
    for (const g of gens) replay(await disk.readFile(path.join(dir, `${PREFIX}${g}`)), apply);
    return new IndexJournal(dir, disk, (gens.at(-1) ?? 0) + 1, onBroken);
  }

  private file(gen: number): string {
    return path.join(this.dir, `${PREFIX}${gen}`);
  }

  /** A step that fails is logged; the steps after it still run. */
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
    setImmediate(() => this.flush().catch(() => undefined)); // logged where it broke
  }

  /**
   * Hand what was appended to the disk; resolves once it (and all before it) was written. The
   * write is inline when nothing is queued before it: the applier waits for its landing notes
   * (DiskIndex.noteLanding), and a write through the thread pool waited behind every fsync of
   * the applies in flight (a 10,000-file sync took twice as long). Rejects when the rows were
   * not written (the journal is broken): an apply waiting for its landing note must not go on.
   */
  flush(): Promise<void> {
    this.flushing = false;
    if (this.pending.length === 0) return this.tail.then(() => this.written());
    const buf = Buffer.concat(this.pending);
    this.pending = [];
    if (this.steps === 0 && this.handle !== null) {
      this.writeNow(buf);
      return this.written();
    }
    return this.enqueue(() => Promise.resolve(this.writeNow(buf))).then(() => this.written());
  }

  private written(): Promise<void> {
    return this.broken === null ? Promise.resolve() : Promise.reject(this.broken);
  }

  private writeNow(buf: Buffer): void {
    if (this.broken !== null) return; // dropped: the save that mends the journal covers them
    try {
      if (this.handle === null) throw new Error('the journal file is not open');
      this.handle.appendSync(buf);
    } catch (e) {
      this.breaks(e);
    }
  }

  /**
   * A save is about to copy the index: what is appended from this call on goes to a new
   * journal (a working one again, if this one broke). Resolves to the generation the copy
   * covers.
   */
  async rotate(): Promise<number> {
    this.flush().catch(() => undefined); // rows it drops are in the copy
    const done = this.gen;
    const next = ++this.gen;
    await this.enqueue(async () => {
      const old = this.handle;
      this.handle = null;
      await old?.close().catch(() => undefined); // written with appendSync: nothing to lose
      await this.openFile(next);
    });
    return done;
  }

  /** The save that rotated away from `upTo` is durable: journals up to it are covered. */
  async dropUpTo(upTo: number): Promise<void> {
    for (const g of await generations(this.dir, this.disk))
      if (g <= upTo) await this.disk.remove(this.file(g));
  }

  async close(): Promise<void> {
    this.flush().catch(() => undefined); // logged when it broke
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
