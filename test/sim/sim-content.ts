import type { Content, TransferStatus } from '../../src/filesync/content.js';
import type { MemDisk } from '../../src/filesync/mem-disk.js';
import type { FileRecord, Version } from '../../src/filesync/record.js';
import { TransferError } from '../../src/filesync/transfer.js';
import type { Prng } from './prng.js';

/**
 * The block plane's stand-in under the simulator: a version's content comes from the world's
 * store of everything users wrote (the block protocol has its own tests), written to a temp
 * file on the machine's disk as a download would be. Some fetches fail, as a peer that went
 * away does: the apply is parked and tried again.
 */
export class SimContent implements Content {
  private seq = 0;

  constructor(
    private readonly disk: MemDisk,
    private readonly tmpDir: string,
    private readonly store: ReadonlyMap<string, Buffer>,
    private readonly rng: Prng,
    private readonly failP: number,
  ) {}

  init(): Promise<void> {
    this.disk.mkdir(this.tmpDir, { recursive: true });
    return Promise.resolve();
  }

  fetch(_key: string, r: FileRecord, v: Version): Promise<string> {
    const data = r.size === 0 ? Buffer.alloc(0) : this.store.get(r.hash);
    if (data === undefined || this.rng.chance(this.failP))
      return Promise.reject(new TransferError(`no peer serves ${r.hash.slice(0, 8)}`));
    const tmp = `${this.tmpDir}/${v[0]}-${v[1]}-${this.seq++}`;
    try {
      this.disk.mkdir(this.tmpDir, { recursive: true });
      this.disk.writeFile(tmp, data, r.mode);
      this.disk.utimes(tmp, new Date(r.mtimeMs), new Date(r.mtimeMs));
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return Promise.resolve(tmp);
  }

  noteTrashed(): void {}
  keepPublished(): void {}
  progressed(): void {}
  active(): TransferStatus[] {
    return [];
  }
  close(): void {}
}
