import type { BlockRef } from '../sync/index.js';
import type { Disk } from './disk.js';
import type { DiskIndex, IndexEntry } from './disk-index.js';
import { sha256 } from './hasher.js';
import { SMALL_READ_BYTES } from './localfs.js';
import { absPath, pathOf } from './paths.js';
import type { RealParents } from './safe-fs.js';
import { BLOCK_BYTES, type FileRecord } from './record.js';
import { unchanged } from './stat.js';

/** The block hashes of a record's content: its one hash for a file of at most one block. */
export function blockList(r: FileRecord): string[] {
  if (r.size === 0) return [];
  return r.size > BLOCK_BYTES ? r.blocks : [r.hash];
}

/** The hash the index holds for block `i` of an indexed file (its content hash if one block). */
export function indexedBlockHash(e: IndexEntry, i: number): string | undefined {
  if (e.type !== 'file') return undefined;
  return e.size > BLOCK_BYTES ? e.blocks[i] : i === 0 ? e.hash : undefined;
}

/**
 * Where a block a download needs may already be on this node's disk: an interrupted download of
 * the same version, a trashed copy (a move or rename sends nothing), any indexed file with the
 * same content or holding that block, the path itself. Every block found is hash-checked.
 */
export class LocalBlocks {
  /** Trashed files by content hash. */
  private readonly trashed = new Map<string, string>();

  constructor(
    private readonly root: string,
    private readonly index: DiskIndex,
    private readonly parents: RealParents,
    private readonly disk: Disk,
  ) {}

  private async readBlock(abs: string, i: number): Promise<Buffer | null> {
    return (await this.disk.readBlock(abs, i, false))?.data ?? null;
  }

  /** A block of the indexed file `rel`, never read through a symlinked parent. */
  private readBlockOf(rel: string, i: number): Promise<Buffer | null> {
    // The check and readBlock's open run in the same turn: no apply can swap a parent between.
    return this.parents.ok(rel)
      ? this.readBlock(absPath(this.root, rel), i)
      : Promise.resolve(null);
  }

  /**
   * Block `req.index` of version content `req.hash` for `rel`, from `rel` or any indexed file
   * holding that content, checked (or vouched for by an unchanged stat) before it is served.
   */
  async readIndexed(rel: string, req: BlockRef): Promise<Uint8Array | null> {
    // Only indexed paths: a relay is asked for files it has not written yet, and a look at a
    // path that is not there is a failed open per file.
    const sources = new Set<string>();
    const e = this.index.get(rel);
    if (e) {
      sources.add(rel);
      for (const p of this.index.withHash(e.hash)) sources.add(p);
    }
    // A single-block file's block hash is its content hash: any copy of it will do.
    for (const p of this.index.withHash(req.hash)) sources.add(p);
    for (const p of sources) {
      const ie = this.index.get(p);
      const vouched =
        ie !== undefined &&
        ie.size > SMALL_READ_BYTES &&
        indexedBlockHash(ie, req.index) === req.hash;
      // A large block of an indexed file whose stat has not moved since it was hashed is what
      // the index says (the scanner's own rule): no second SHA-256 of every MiB served (0.15
      // CPU-s per 256 MiB). Had it changed unseen, the asker's hash check turns the block down.
      // Never served through a symlinked parent: checked in the turn that opens the file.
      if (!this.parents.ok(p)) continue;
      const got = await this.disk.readBlock(absPath(this.root, p), req.index, vouched);
      if (got === null || got.data.length === 0) continue;
      const { data, statAfter: st } = got;
      if ((st !== null && unchanged(ie!, st, 'file')) || sha256(data) === req.hash) {
        return data;
      }
    }
    return null;
  }

  noteTrashed(hash: string, abs: string): void {
    if (hash !== '') this.trashed.set(hash, abs);
  }

  /** Block `i` of record `r` for `key`, from `tmp` (a resumed download) or any local copy. */
  async find(tmp: string | null, key: string, r: FileRecord, i: number): Promise<Buffer | null> {
    const want = blockList(r)[i]!;
    const rel = pathOf(key);
    // Ours (tmp/, trash/) as they are; paths under the root through the parent check.
    const candidates: Array<string | { rel: string }> = tmp === null ? [] : [tmp];
    if (this.trashed.has(r.hash)) candidates.push(this.trashed.get(r.hash)!);
    for (const p of this.index.withHash(r.hash)) candidates.push({ rel: p });
    if (r.size > BLOCK_BYTES) {
      for (const p of this.index.withBlock(want)) {
        const e = this.index.get(p);
        const j = e?.blocks.indexOf(want) ?? -1;
        if (j >= 0) {
          const data = await this.readBlockOf(p, j);
          if (data && sha256(data) === want) return data;
        }
      }
    }
    if (rel !== null && this.index.get(rel)) candidates.push({ rel });
    for (const c of candidates) {
      const data =
        typeof c === 'string' ? await this.readBlock(c, i) : await this.readBlockOf(c.rel, i);
      if (data && data.length > 0 && sha256(data) === want) return data;
    }
    return null;
  }
}
