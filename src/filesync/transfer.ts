import { createHash } from 'node:crypto';
import path from 'node:path';
import type { NodeId } from '../core/index.js';
import type { BlockRef, ServedBlock, SyncDriver } from '../sync/index.js';
import type { DiskIndex } from './disk-index.js';
import { AskedPeers, KeyProgress } from './in-flight.js';
import { PeerBlocks } from './peer-blocks.js';
import type { Clock } from './clock.js';
import { lstatOr, type Disk } from './disk.js';
import { SMALL_READ_BYTES } from './localfs.js';
import { absPath, pathOf } from './paths.js';
import { RecentBlocks, RelayRing } from './recent-blocks.js';
import type { RealParents } from './safe-fs.js';
import { BLOCK_BYTES, sameVersion, type FileRecord, type Version } from './record.js';
import { ByteBudget } from './byte-budget.js';
import type { Content, TransferStatus } from './content.js';
import { blockList, LocalBlocks } from './local-blocks.js';

/**
 * Blocks of one file fetched at once. 2 MiB in flight already outruns loopback round trips;
 * measured on b (256 MiB), 8 → 2 left the time unchanged (3.6–3.8 s median) and cut a relay's
 * peak RSS from ~170 to ~118 MiB (every block is a fresh buffer the GC frees late).
 */
const FILE_WINDOW_BLOCKS = 2;
/**
 * Bytes of blocks all downloads of a node hold at once (fetched or being fetched, until written
 * and hashed). The per-file window alone let 64 applies of large files hold 128 MiB and more:
 * 100 files of 4 MiB took a relay to 276 MiB RSS. One file's window fits four times over.
 */
export const DOWNLOAD_HELD_MAX_BYTES = 8 * 1024 * 1024;

/** A download starts writing back what it wrote every this many bytes (see fetch). */
const FLUSH_EVERY_BYTES = 32 * 1024 * 1024;
/**
 * Bytes of a relay's latest large downloaded blocks kept to serve on from memory (see
 * RelayRing): the next hop asks for each moments after it landed. Read back instead, each
 * went to the device (O_DIRECT) while the relay's own writes queued behind it; on b (256 MiB)
 * the last node finished ~0.5 s after the relay. Four windows' worth: a next hop a few blocks
 * behind still gets them from here.
 */
const RELAY_KEEP_BYTES = 8 * 1024 * 1024;
/** How long a block request for a version this node is about to hold waits for it. */
const SERVE_WAIT_MS = 5_000;
/** How often a request held for a version still being logged here looks again. */
const INCOMING_RECHECK_MS = 20;
/** Block requests waiting at once; beyond this they are answered "not here" at once. */
const MAX_SERVE_WAITERS = 4096;

export { SupersededError, TransferError } from './peer-blocks.js';

/** A download in progress: its temp file and which blocks are in it, verified. */
interface Download {
  tmp: string;
  blocks: string[];
  have: Set<number>;
  bytesDone: number;
  size: number;
  startedMs: number;
}

/** What the transfer asks the mirror about the KV's versions of a key. */
export interface TransferVersions {
  /** Whether `v` is still the KV's version of `key`. */
  current(key: string, v: Version): boolean;
  /** Whether this node is about to hold `v` of `key` (the KV has it, the disk not yet). */
  expects(key: string, v: Version): boolean;
  /**
   * The version of `key` this node is logging now, if any. A relay passes a peer's changes on
   * before they are durable here, so the next node can ask for content a moment before
   * `expects` says yes; such a request is held too, not answered "not here".
   */
  incoming(key: string): Version | undefined;
  /** The peer the KV's current entry for `key` came from, if known. */
  sourceOf(key: string): NodeId | undefined;
}

export interface TransferOptions {
  root: string;
  /** Where downloads are written before they are renamed into place. */
  tmpDir: string;
  index: DiskIndex;
  driver: SyncDriver;
  parents: RealParents;
  versions: TransferVersions;
  /** The disk downloads are written to and blocks read from (the mirror's). */
  disk: Disk;
  clock: Clock;
}

export type { TransferStatus } from './content.js';

/**
 * Block transfer: content for a file version comes from local blocks first (any indexed file
 * holding the block, a trashed copy, an interrupted download of the same version), then from
 * connected peers, a window of blocks at a time. Every block is hash-checked against the
 * record's block list. The whole file is not hashed again: each of its bytes was just checked,
 * and the record's whole-file hash came from the same read of the author's file as its block
 * hashes, so a second pass (0.17 CPU-s per 256 MiB on every receiving node, on the critical
 * path) could only catch an author contradicting its own record. Downloads in progress serve
 * their verified blocks to peers, so a chain A→B→C pipelines.
 */
export class Transfer implements Content {
  private readonly downloads = new Map<string, Download>();
  private readonly recent: RecentBlocks;
  /** Large blocks just downloaded, while this node has a peer to pass them on to. */
  private readonly relayed: RelayRing;
  /** Block bytes the downloads hold now (see DOWNLOAD_HELD_MAX_BYTES). */
  readonly held = new ByteBudget(DOWNLOAD_HELD_MAX_BYTES);
  private readonly local: LocalBlocks;
  readonly counters = {
    blocksLocal: 0,
    blocksRemote: 0,
    bytesIn: 0,
    bytesOut: 0,
    /** Bytes of downloads written past the page cache (see direct-io.ts). */
    bytesDirect: 0,
    /** Bytes served from the blocks just downloaded (RELAY_KEEP_BYTES), not read back. */
    bytesRelayedFromMemory: 0,
    failures: 0,
  };
  private readonly progress: KeyProgress;
  private closed = false;
  private readonly asked = new AskedPeers();
  private readonly peers: PeerBlocks;
  private readonly root: string;
  private readonly tmpDir: string;
  private readonly index: DiskIndex;
  private readonly driver: SyncDriver;
  private readonly versions: TransferVersions;
  private readonly disk: Disk;
  private readonly clock: Clock;
  /** Every read of a path under the root checks its parents first (shared with the mirror). */
  readonly parents: RealParents;

  constructor(opts: TransferOptions) {
    ({ root: this.root, tmpDir: this.tmpDir, index: this.index, parents: this.parents } = opts);
    this.driver = opts.driver;
    this.versions = opts.versions;
    ({ disk: this.disk, clock: this.clock } = opts);
    this.recent = new RecentBlocks(this.clock);
    this.relayed = new RelayRing(this.clock, RELAY_KEEP_BYTES / BLOCK_BYTES, BLOCK_BYTES);
    this.progress = new KeyProgress(this.clock);
    this.local = new LocalBlocks(this.root, this.index, this.parents, this.disk);
    this.driver.serveBlocks((peer, req) => this.serve(peer, req));
    this.peers = new PeerBlocks({
      driver: this.driver,
      versions: this.versions,
      asked: this.asked,
      counters: this.counters,
      closed: () => this.closed,
      clock: this.clock,
    });
  }

  async init(maxTmpAgeMs = 24 * 3600_000): Promise<void> {
    this.disk.mkdir(this.tmpDir, { recursive: true });
    for (const n of this.disk.readdir(this.tmpDir)) {
      const p = path.join(this.tmpDir, n);
      const st = lstatOr(this.disk, p);
      if (st && this.clock.now() - st.mtimeMs > maxTmpAgeMs) await this.disk.removeTree(p);
    }
  }

  noteTrashed(hash: string, abs: string): void {
    this.local.noteTrashed(hash, abs);
  }

  active(): TransferStatus[] {
    return [...this.downloads.entries()].map(([k, d]) => ({
      path: pathOf(k) ?? k,
      bytesDone: d.bytesDone,
      size: d.size,
      startedMs: d.startedMs,
    }));
  }

  private tmpName(key: string, v: Version): string {
    const h = createHash('sha256').update(key).digest('hex').slice(0, 24);
    return absPath(this.tmpDir, `${h}-${v[0]}-${v[1]}`);
  }

  /**
   * A small file's content as it was hashed for a version we publish: served from memory for a
   * while, since a file that keeps changing (a log) no longer holds that version on disk.
   */
  keepPublished(hash: string, data: Uint8Array): void {
    this.recent.add(hash, data);
  }

  /**
   * Materialise version `v` of `key` in a temp file and return its path. The file is verified
   * and fsynced; the caller renames it into place.
   */
  async fetch(key: string, r: FileRecord, v: Version): Promise<string> {
    const blocks = blockList(r);
    const tmp = this.tmpName(key, v);
    const d: Download = {
      tmp,
      blocks,
      have: new Set(),
      bytesDone: 0,
      size: r.size,
      startedMs: this.clock.now(),
    };
    if (r.size <= SMALL_READ_BYTES) return this.fetchSmall(key, r, v, d);
    // An interrupted download of the same version resumes: its blocks are checked like any.
    const file = await this.disk.openDownload(tmp);
    const resuming = (await file.size()) > 0;
    this.downloads.set(key, d);
    // Writeback started along the way (one at a time), so the final fsync is not all of it.
    // Its error is kept and thrown at the end: Linux reports a writeback error to a descriptor
    // once, so the final fsync would not see it again.
    let flushing: Promise<void> | null = null;
    let flushError: unknown = null;
    let unflushed = 0;
    try {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < blocks.length) {
          const i = next++;
          const release = await this.held.acquire(Math.min(BLOCK_BYTES, r.size - i * BLOCK_BYTES));
          try {
            const data =
              (await this.fromDisk(resuming ? tmp : null, key, r, i)) ??
              (await this.peers.block(key, v, i, blocks[i]!));
            await file.write(data, i * BLOCK_BYTES);
            if (file.direct) this.counters.bytesDirect += data.length;
            else unflushed += data.length;
            if (unflushed >= FLUSH_EVERY_BYTES && flushing === null) {
              unflushed = 0;
              flushing = file
                .datasync()
                .catch((e: unknown) => void (flushError ??= e))
                .finally(() => (flushing = null));
            }
            // A peer other than the one it came from may ask for it next (a relay). Each store
            // takes its own sizes: the ring 1 MiB blocks, the recent blocks a small last one.
            if (this.driver.linkedPeers.length > 1) {
              this.relayed.add(blocks[i]!, data);
              this.recent.add(blocks[i]!, data);
            }
            d.have.add(i);
            d.bytesDone += data.length;
          } finally {
            release();
          }
          this.progressed(key);
        }
      };
      await Promise.all(
        Array.from({ length: Math.min(FILE_WINDOW_BLOCKS, blocks.length) }, worker),
      );
      // Also cuts the padding of an O_DIRECT write of the last block.
      await file.truncate(r.size);
      await file.sync();
      await flushing;
      if (flushError !== null) throw flushError;
    } finally {
      await flushing;
      await file.close();
      this.downloads.delete(key);
    }
    return tmp;
  }

  /** A file of at most one small block: written at once and fsynced. */
  private async fetchSmall(key: string, r: FileRecord, v: Version, d: Download): Promise<string> {
    this.downloads.set(key, d);
    try {
      const data =
        d.blocks.length === 0
          ? Buffer.alloc(0)
          : ((await this.fromDisk(null, key, r, 0)) ??
            (await this.peers.batched(key, v, d.blocks[0]!)) ??
            (await this.peers.block(key, v, 0, d.blocks[0]!)));
      if (data.length > 0) {
        // Served from memory at once: a next hop holding a request for it must not wait for
        // this node's fsync (in a chain every file would wait on each relay's disk).
        this.recent.add(d.blocks[0]!, data);
        d.bytesDone = data.length;
        this.progressed(key);
      }
      // Created with the record's mode (kept readable and writable for us), so that the
      // applier's chmod is needed only where the umask or a leftover tmp made it differ.
      await this.disk.writeSynced(d.tmp, data, r.mode | 0o600);
      if (data.length > 0) d.have.add(0);
    } finally {
      this.downloads.delete(key);
    }
    return d.tmp;
  }

  private async fromDisk(
    tmp: string | null,
    key: string,
    r: FileRecord,
    i: number,
  ): Promise<Buffer | null> {
    const data = await this.local.find(tmp, key, r, i);
    if (data !== null) this.counters.blocksLocal++;
    return data;
  }

  /**
   * Serve a block from a download in progress, the file on disk, or any file with that content.
   * When this node is itself about to hold that version (queued or being fetched, as a relay in
   * a chain is), the request waits for it, bounded, instead of making the asker poll.
   */
  private async serve(peer: NodeId, req: BlockRef): Promise<ServedBlock | null> {
    const rel = pathOf(req.key);
    if (rel === null) return null;
    const deadline = this.clock.now() + SERVE_WAIT_MS;
    for (;;) {
      const data = await this.serveNow(rel, req);
      if (data !== null) return data;
      const left = deadline - this.clock.now();
      // Never hold a peer we are asking for the same key ourselves: two relays would wait on
      // each other until both timed out.
      if (
        this.closed ||
        left <= 0 ||
        this.progress.waiting >= MAX_SERVE_WAITERS ||
        this.asked.has(req.key, peer)
      )
        return null;
      const v: Version = [req.node, req.seq];
      if (this.versions.expects(req.key, v)) await this.progress.next(req.key, left);
      else if (sameVersion(this.versions.incoming(req.key) ?? null, v))
        // Nothing may mark the end of the logging (a version that lost to one landing in the
        // same commit is never applied here, so no progress follows): look again shortly.
        await this.progress.next(req.key, Math.min(left, INCOMING_RECHECK_MS));
      else return null;
    }
  }

  /** A block, or null. Only the ring's are lent (its buffers are reused); the rest are fresh. */
  private async serveNow(rel: string, req: BlockRef): Promise<ServedBlock | null> {
    const recent = this.recent.get(req.hash);
    if (recent !== undefined) {
      this.counters.bytesOut += recent.length;
      return { data: recent };
    }
    const relayed = this.relayed.get(req.hash);
    if (relayed !== undefined) {
      this.counters.bytesOut += relayed.data.length;
      this.counters.bytesRelayedFromMemory += relayed.data.length;
      return relayed;
    }
    const d = this.downloads.get(req.key);
    if (d && d.have.has(req.index) && d.blocks[req.index] === req.hash) {
      // Verified when it landed, and tmp/ is ours: no second hash on the way out. The length
      // comes from the record, not the file: an O_DIRECT write pads the last block until the
      // download's end truncates it.
      const offset = req.index * BLOCK_BYTES;
      const data = await this.disk.readRange(d.tmp, offset, Math.min(BLOCK_BYTES, d.size - offset));
      if (data !== null) {
        this.counters.bytesOut += data.length;
        return { data };
      }
    }
    const data = await this.local.readIndexed(rel, req);
    if (data !== null) this.counters.bytesOut += data.length;
    return data === null ? null : { data };
  }

  /**
   * Shutting down: downloads waiting on peers give up at their next try and held requests are
   * answered, so a stopping node is not kept waiting by its peers stopping too.
   */
  close(): void {
    this.closed = true;
    this.progress.wakeAll();
  }

  /** Progress on `key`: a block of its download landed, or its apply finished (either way). */
  progressed(key: string): void {
    this.progress.progressed(key);
  }
}
