import path from 'node:path';
import { Codec } from '../codec/index.js';
import { logger } from '../log/index.js';
import { nodeStoreDisk, writeFileAtomic, type StoreDisk } from '../store/index.js';
import { IndexJournal } from './index-journal.js';
import {
  fileType,
  HEX64,
  isUint,
  isVersion,
  MAX_HISTORY,
  NO_ANCESTORS,
  type FileType,
  type Version,
} from './record.js';

const log = logger('filesync');
const packr = new Codec({ useRecords: false, mapsAsObjects: true });
/** 2: rows as arrays (1 held maps; an index in format 1 is rebuilt by a full scan). */
const FORMAT = 2;
/** Shortest gap between periodic saves, and how many times a save's own duration to wait. */
export const MIN_SAVE_INTERVAL_MS = 1000;
export const SAVE_COST_FACTOR = 20;
/** One shared empty block list (most files are a single block); frozen, so a push throws. */
const NO_BLOCKS = Object.freeze([]) as unknown as string[];

/** What is on disk at a path and which KV version it reflects. */
export interface IndexEntry {
  type: Exclude<FileType, 'deleted'>;
  size: number;
  mtimeMs: number;
  ino: number;
  mode: number;
  hash: string;
  blocks: string[];
  target: string | null;
  /** The KV version this disk state is (null until published or adopted). */
  version: Version | null;
  /**
   * `version`'s own lineage (its record's prev and history): a version published on top of it
   * inherits this even when the KV's current record is a concurrent one (kills-only seed 327).
   */
  ancestors: Version[];
}

/** A version an apply is putting at a path, or its removal. */
export type Landing = IndexEntry | 'deleted';

/**
 * The disk index: local, persisted in `<data>/index`, rebuildable (a lost index only costs a
 * rehash: the start scan adopts KV versions whose content matches what is on disk).
 */
export class DiskIndex {
  private readonly map = new Map<string, IndexEntry>();
  /** content hash → paths holding it, for reusing local content (renames, copies). */
  private readonly byHash = new Map<string, Holders>();
  /** block hash → paths whose block list holds it, for reusing blocks of edited large files. */
  private readonly byBlock = new Map<string, Holders>();
  private dirty = false;
  private saving: Promise<void> | null = null;
  private nextSaveAtMs = 0;
  /** Applies the journal says were under way when the process died (see noteLanding). */
  private readonly landed = new Map<string, Landing>();
  /** Landings noted in this run and not settled yet (by `set` or `delete` of their path). */
  private readonly notes = new Map<string, Landing>();
  /** Changes since the last save (see IndexJournal); null for an index that is never loaded. */
  private journal: IndexJournal | null = null;

  constructor(
    private readonly file: string,
    /** The data dir's disk (the store's port: the simulator's loses what a crash takes). */
    private readonly disk: StoreDisk = nodeStoreDisk,
    private readonly now: () => number = Date.now,
  ) {}

  static async load(
    dataDir: string,
    disk: StoreDisk = nodeStoreDisk,
    now: () => number = Date.now,
  ): Promise<DiskIndex> {
    const idx = new DiskIndex(path.join(dataDir, 'index'), disk, now);
    let buf: Buffer | null = null;
    try {
      buf = await disk.readFile(idx.file);
    } catch {
      // No saved index yet (a first start, or lost): the journals and a full scan rebuild it.
    }
    if (buf !== null) idx.loadSaved(buf);
    idx.journal = await IndexJournal.open(
      dataDir,
      disk,
      (row) => idx.replay(row),
      () => idx.saveSoon(),
    );
    return idx;
  }

  /** Resolves once every change so far is in the journal (handed to the disk, not synced). */
  journalled(): Promise<void> {
    return this.journal?.flush() ?? Promise.resolve();
  }

  private loadSaved(buf: Buffer): void {
    try {
      const x = packr.unpack(buf) as { format?: unknown; rows?: unknown };
      if (x.format !== FORMAT || !Array.isArray(x.rows)) throw new Error('unknown format');
      for (const row of x.rows as unknown[]) {
        const got = decodeRow(row);
        if (got === null) throw new Error('bad row');
        this.set(got[0], got[1]);
      }
      this.dirty = false;
    } catch (e) {
      log.warn('disk index unreadable; rebuilding it from a full scan', { error: String(e) });
      this.map.clear();
      this.byHash.clear();
      this.byBlock.clear();
    }
  }

  /**
   * One journal row: ['s', …row] sets a path, ['d', path] removes it, ['l', …row] and
   * ['x', path] say an apply is about to put a version there or remove it (a later 's' says
   * it was recorded). A bad row is skipped.
   */
  private replay(row: unknown[]): void {
    if (row[0] === 'd' && typeof row[1] === 'string') {
      this.landed.delete(row[1]);
      this.delete(row[1], false);
    }
    if (row[0] === 'x' && typeof row[1] === 'string') this.landed.set(row[1], 'deleted');
    const got = row[0] === 's' || row[0] === 'l' ? decodeRow(row.slice(1)) : null;
    if (got === null) return;
    if (row[0] === 'l') this.landed.set(got[0], got[1]);
    else {
      this.landed.delete(got[0]);
      this.set(got[0], got[1], false);
    }
  }

  /**
   * An apply is about to rename `e`'s version into `p`, or (`deleted`) to remove `p`. Kill the
   * process after the disk changed but before its index record was written, and the start scan
   * would take that version for a local edit (publishing a received version in our name), or
   * the removal for a local delete: journalled first, the scan knows better (see landedAt).
   * Await `journalled` before changing the disk.
   */
  noteLanding(p: string, e: Landing): void {
    this.notes.set(p, e);
    this.journalLanding(p, e);
  }

  private journalLanding(p: string, e: Landing): void {
    this.journal?.append(e === 'deleted' ? ['x', p] : ['l', ...encodeRow(p, e)]);
  }

  /** The journal broke: a save mends it (a new file) and holds what it dropped. */
  private saveSoon(): void {
    this.dirty = true;
    this.nextSaveAtMs = 0;
  }

  /** What an apply under way when the process died was putting at `p` (from the journal). */
  landedAt(p: string): Landing | undefined {
    return this.landed.get(p);
  }

  /** The start scan is done: what was under way before is settled. */
  forgetLandings(): void {
    if (this.landed.size > 0) this.dirty = true; // a save drops the journals that hold them
    this.landed.clear();
  }

  get size(): number {
    return this.map.size;
  }

  get(p: string): IndexEntry | undefined {
    return this.map.get(p);
  }

  paths(): IterableIterator<string> {
    return this.map.keys();
  }

  entries(): IterableIterator<[string, IndexEntry]> {
    return this.map.entries();
  }

  set(p: string, e: IndexEntry, journal = true): void {
    if (journal) this.settled(p);
    this.delete(p, false);
    if (e.blocks.length === 0) e.blocks = NO_BLOCKS; // the entry is the index's from here on
    this.map.set(p, e);
    if (e.hash !== '') addTo(this.byHash, e.hash, p);
    for (const b of e.blocks) addTo(this.byBlock, b, p);
    this.dirty = true;
    if (journal) this.journal?.append(['s', ...encodeRow(p, e)]);
  }

  delete(p: string, journal = true): void {
    if (journal) this.settled(p);
    const old = this.map.get(p);
    if (old === undefined) return;
    this.map.delete(p);
    removeFrom(this.byHash, old.hash, p);
    for (const b of old.blocks) removeFrom(this.byBlock, b, p);
    this.dirty = true;
    if (journal) this.journal?.append(['d', p]);
  }

  /** What was under way at `p` is done and recorded: no start scan needs to know of it. */
  private settled(p: string): void {
    this.notes.delete(p);
    this.landed.delete(p);
  }

  /** Paths whose indexed content has this hash. */
  withHash(hash: string): string[] {
    return holders(this.byHash.get(hash));
  }

  /** Paths whose block list holds this block hash. */
  withBlock(hash: string): string[] {
    return holders(this.byBlock.get(hash));
  }

  /**
   * Periodic persistence. The index is a cache (a lost one costs a rehash) and a save writes
   * all of it, ~17 MB at 100,000 files, so saves are spaced SAVE_COST_FACTOR times as long as
   * the last one took: under 5 % of the time however big the tree is.
   */
  async saveIfDue(nowMs: number = this.now()): Promise<void> {
    if (!this.dirty || nowMs < this.nextSaveAtMs || this.saving !== null) return;
    const t0 = this.now();
    await this.save();
    const tookMs = this.now() - t0;
    this.nextSaveAtMs = nowMs + Math.max(MIN_SAVE_INTERVAL_MS, SAVE_COST_FACTOR * tookMs);
  }

  /**
   * Persist if changed (one write at a time). The rows are encoded and written SAVE_CHUNK_ROWS
   * at a time from a copy of the entry references taken at once (entries are never changed in
   * place, so that is one point in time): encoding the whole index in one buffer made ~30 MiB
   * of garbage at 100,000 files on every save, the largest part of a receiving node's peak RSS.
   */
  async save(): Promise<void> {
    if (this.saving) await this.saving;
    if (!this.dirty) return;
    this.dirty = false;
    const paths = [...this.map.keys()];
    const entries = [...this.map.values()];
    // The copy above is what the journals so far describe: changes from here go to a new one.
    const covered = this.journal?.rotate();
    // Landings not settled yet live in the journal the save drops: written again in the new
    // one, or a kill right after the save would leave the start scan without them.
    // (Those read at start stay the start scan's: not this run's notes, or never forgotten.)
    for (const [p, e] of [...this.landed, ...this.notes]) this.journalLanding(p, e);
    const save = writeFileAtomic(
      this.file,
      async (write) => {
        // The document is `{format, rows: [...]}`, as one encode of it would make.
        await write(
          Buffer.concat([
            Buffer.from([0x82]),
            packr.pack('format'),
            packr.pack(FORMAT),
            packr.pack('rows'),
            arrayHeader(paths.length),
          ]),
        );
        for (let from = 0; from < paths.length; from += SAVE_CHUNK_ROWS) {
          const rows: unknown[] = [];
          for (let i = from; i < Math.min(from + SAVE_CHUNK_ROWS, paths.length); i++)
            rows.push(encodeRow(paths[i]!, entries[i]!));
          const bytes = packr.pack(rows);
          await write(bytes.subarray(arrayHeader(rows.length).length)); // the rows, not the array
        }
      },
      0o666,
      this.disk,
    );
    this.saving = Promise.all([save, covered]).then(async ([, upTo]) => {
      if (upTo !== undefined) await this.journal?.dropUpTo(upTo);
    });
    try {
      await this.saving;
    } catch (e) {
      this.dirty = true; // not saved: the next save tries again
      throw e;
    } finally {
      this.saving = null;
    }
  }
}

/** Rows encoded at a time by `save`. */
export const SAVE_CHUNK_ROWS = 2048;

/** A msgpack array header for `n` elements. */
function arrayHeader(n: number): Buffer {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n < 0x10000) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Rows are arrays, not maps: the field names would be 40 % of the file. */
function encodeRow(p: string, e: IndexEntry): unknown[] {
  const row = [p, e.type, e.size, e.mtimeMs, e.ino, e.mode, e.hash, e.blocks, e.target, e.version];
  return e.ancestors.length === 0 ? row : [...row, e.ancestors];
}

const isHash = (h: unknown): h is string => typeof h === 'string' && HEX64.test(h);

/** A row read off the disk, validated; null when any field is off. */
function decodeRow(row: unknown): [string, IndexEntry] | null {
  if (!Array.isArray(row) || (row.length !== 10 && row.length !== 11)) return null;
  const [p, typeName, size, mtimeMs, ino, mode, hash, blocks, target, v, a] = row as unknown[];
  const type = fileType(typeName);
  if (typeof p !== 'string' || p === '' || type === undefined || type === 'deleted') return null;
  if (!isUint(size) || typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs)) return null;
  if (!isUint(ino) || !isUint(mode) || !(hash === '' || isHash(hash))) return null;
  if (!Array.isArray(blocks) || !blocks.every(isHash)) return null;
  if (target !== null && typeof target !== 'string') return null;
  if (v !== null && !isVersion(v)) return null;
  const version: Version | null = v === null ? null : [v[0], v[1]];
  const ancestors = decodeAncestors(a);
  if (ancestors === null) return null;
  return [
    p,
    {
      type,
      size,
      mtimeMs,
      ino,
      mode,
      hash,
      blocks: blocks as string[],
      target,
      version,
      ancestors,
    },
  ];
}

/** Rows written before lineages were kept (10 columns) have none: `undefined` reads as []. */
function decodeAncestors(a: unknown): Version[] | null {
  if (a === undefined) return NO_ANCESTORS;
  if (!Array.isArray(a) || a.length > MAX_HISTORY || !a.every(isVersion)) return null;
  return a.map((v: Version) => [v[0], v[1]] as Version);
}

/**
 * Most hashes are held by one path, so a lone path is stored as the string itself: a Set per
 * file cost ~150 bytes each, 15 MiB at 100,000 files.
 */
type Holders = string | Set<string>;

function addTo(m: Map<string, Holders>, k: string, p: string): void {
  const cur = m.get(k);
  if (cur === undefined || cur === p) m.set(k, p);
  else if (typeof cur === 'string') m.set(k, new Set([cur, p]));
  else cur.add(p);
}

function removeFrom(m: Map<string, Holders>, k: string, p: string): void {
  const cur = m.get(k);
  if (cur === p) m.delete(k);
  else if (cur instanceof Set) {
    cur.delete(p);
    if (cur.size === 1) m.set(k, cur.values().next().value as string);
  }
}

function holders(h: Holders | undefined): string[] {
  return h === undefined ? [] : typeof h === 'string' ? [h] : [...h];
}
