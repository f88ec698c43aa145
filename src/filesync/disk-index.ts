import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Packr } from 'msgpackr';
import { logger } from '../log/index.js';
import { writeFileAtomic } from '../store/fsutil.js';
import type { FileType, Version } from './record.js';

const log = logger('filesync');
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const FORMAT = 1;

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
}

/**
 * The disk index: local, persisted in `<data>/index`, rebuildable (a lost index only costs a
 * rehash: the start scan adopts KV versions whose content matches what is on disk).
 */
export class DiskIndex {
  private readonly map = new Map<string, IndexEntry>();
  /** content hash → paths holding it, for reusing local content (renames, copies). */
  private readonly byHash = new Map<string, Set<string>>();
  /** block hash → paths whose block list holds it, for reusing blocks of edited large files. */
  private readonly byBlock = new Map<string, Set<string>>();
  private dirty = false;
  private saving: Promise<void> | null = null;

  constructor(private readonly file: string) {}

  static async load(dataDir: string): Promise<DiskIndex> {
    const idx = new DiskIndex(path.join(dataDir, 'index'));
    let buf: Buffer;
    try {
      buf = await readFile(idx.file);
    } catch {
      return idx;
    }
    try {
      const x = packr.unpack(buf) as { format?: unknown; entries?: unknown };
      if (x.format !== FORMAT || !Array.isArray(x.entries)) throw new Error('unknown format');
      for (const row of x.entries as unknown[]) {
        if (
          !Array.isArray(row) ||
          typeof row[0] !== 'string' ||
          typeof row[1] !== 'object' ||
          row[1] === null
        ) {
          throw new Error('bad row');
        }
        idx.set(row[0], row[1] as IndexEntry);
      }
      idx.dirty = false;
    } catch (e) {
      log.warn('disk index unreadable; rebuilding it from a full scan', { error: String(e) });
      idx.map.clear();
      idx.byHash.clear();
    }
    return idx;
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

  set(p: string, e: IndexEntry): void {
    this.delete(p);
    this.map.set(p, e);
    if (e.hash !== '') addTo(this.byHash, e.hash, p);
    for (const b of e.blocks) addTo(this.byBlock, b, p);
    this.dirty = true;
  }

  delete(p: string): void {
    const old = this.map.get(p);
    if (old === undefined) return;
    this.map.delete(p);
    removeFrom(this.byHash, old.hash, p);
    for (const b of old.blocks) removeFrom(this.byBlock, b, p);
    this.dirty = true;
  }

  /** Paths whose indexed content has this hash. */
  withHash(hash: string): string[] {
    return [...(this.byHash.get(hash) ?? [])];
  }

  /** Paths whose block list holds this block hash. */
  withBlock(hash: string): string[] {
    return [...(this.byBlock.get(hash) ?? [])];
  }

  /** Persist if changed (one write at a time). */
  async save(): Promise<void> {
    if (this.saving) await this.saving;
    if (!this.dirty) return;
    this.dirty = false;
    const bytes = packr.pack({ format: FORMAT, entries: [...this.map.entries()] });
    this.saving = writeFileAtomic(this.file, bytes).finally(() => (this.saving = null));
    await this.saving;
  }
}

function addTo(m: Map<string, Set<string>>, k: string, p: string): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(p);
}

function removeFrom(m: Map<string, Set<string>>, k: string, p: string): void {
  const s = m.get(k);
  s?.delete(p);
  if (s?.size === 0) m.delete(k);
}
