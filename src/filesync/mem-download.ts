import type { DownloadSink } from './disk.js';

/** A download's file in memory; `fail` lets the disk's injected faults reach its writes. */
export class MemDownload implements DownloadSink {
  readonly direct = false;

  constructor(
    private readonly node: { data: Buffer },
    private readonly fail: () => void,
  ) {}

  size(): Promise<number> {
    return Promise.resolve(this.node.data.length);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    try {
      this.fail();
      // A new buffer each time: a file's bytes are never changed in place, so a test may
      // keep (and cache the hash of) what it read.
      const grown = Buffer.alloc(Math.max(this.node.data.length, position + data.length));
      this.node.data.copy(grown);
      grown.set(data, position);
      this.node.data = grown;
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  truncate(size: number): Promise<void> {
    const data = Buffer.alloc(size);
    this.node.data.copy(data, 0, 0, size);
    this.node.data = data;
    return Promise.resolve();
  }

  datasync(): Promise<void> {
    return Promise.resolve();
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
