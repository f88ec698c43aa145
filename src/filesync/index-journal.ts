import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Codec } from '../codec/index.js';

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
 * starts a new one and deletes the older ones once it is durable.
 */
export class IndexJournal {
  private fd: number;
  private gen: number;
  private pending: Buffer[] = [];
  private flushing = false;

  private constructor(
    private readonly dir: string,
    gen: number,
  ) {
    this.gen = gen;
    this.fd = openSync(this.file(gen), 'a');
  }

  /** Replay every journal in `dir`, oldest first, then start a new one. */
  static open(dir: string, apply: (row: unknown[]) => void): IndexJournal {
    const gens = generations(dir);
    for (const g of gens) replayFile(path.join(dir, `${PREFIX}${g}`), apply);
    return new IndexJournal(dir, (gens.at(-1) ?? 0) + 1);
  }

  private file(gen: number): string {
    return path.join(this.dir, `${PREFIX}${gen}`);
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

  flush(): void {
    this.flushing = false;
    if (this.pending.length === 0) return;
    const buf = Buffer.concat(this.pending);
    this.pending = [];
    writeSync(this.fd, buf);
  }

  /** A save is about to copy the index: what follows goes to a new journal. */
  rotate(): number {
    this.flush();
    closeSync(this.fd);
    const done = this.gen;
    this.gen++;
    this.fd = openSync(this.file(this.gen), 'a');
    return done;
  }

  /** The save that rotated away from `upTo` is durable: journals up to it are covered. */
  dropUpTo(upTo: number): void {
    for (const g of generations(this.dir)) if (g <= upTo) rmSync(this.file(g), { force: true });
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

function generations(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)))
    .map((n) => Number(n.slice(PREFIX.length)))
    .sort((a, b) => a - b);
}

/** Apply each whole record of one journal; a torn tail (the process died mid-write) ends it. */
function replayFile(file: string, apply: (row: unknown[]) => void): void {
  const buf = readFileSync(file);
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
