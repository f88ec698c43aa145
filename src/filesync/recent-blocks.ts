/**
 * Small blocks this node just downloaded, by hash, for serving them on. A relay is asked for a
 * file's block moments after it landed (often by a request it was holding for it); answering
 * from here saves an open, a stat, a read, a close and a SHA-256 per file. Content-addressed, so
 * an entry can never be stale: the bytes were checked against the hash when they arrived, and
 * the asker checks them again. Bounded in bytes and entries; oldest out first.
 */
export const RECENT_BLOCKS_MAX_BYTES = 4 * 1024 * 1024;
export const RECENT_BLOCKS_MAX_ENTRIES = 4096;
/** Larger blocks are not kept (a large file's 1 MiB blocks would flush everything else). */
export const RECENT_BLOCK_MAX_BYTES = 64 * 1024;

export class RecentBlocks {
  private readonly byHash = new Map<string, Uint8Array>();
  private bytes = 0;

  /** Keep a verified block (copied: it may be a view into a much larger frame). */
  add(hash: string, data: Uint8Array): void {
    if (data.length > RECENT_BLOCK_MAX_BYTES || this.byHash.has(hash)) return;
    this.byHash.set(hash, new Uint8Array(data));
    this.bytes += data.length;
    while (this.bytes > RECENT_BLOCKS_MAX_BYTES || this.byHash.size > RECENT_BLOCKS_MAX_ENTRIES) {
      const [oldest, b] = this.byHash.entries().next().value as [string, Uint8Array];
      this.byHash.delete(oldest);
      this.bytes -= b.length;
    }
  }

  get(hash: string): Uint8Array | undefined {
    return this.byHash.get(hash);
  }

  get size(): number {
    return this.byHash.size;
  }
}
