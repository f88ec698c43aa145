import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { logger } from '../log/index.js';
import type { DownloadSink } from './disk.js';
import { BLOCK_BYTES } from './record.js';

const log = logger('transfer');

/**
 * Large downloads bypass the page cache (O_DIRECT). Why: a received block is already in memory,
 * checked, and will be fsynced; copying it into page-cache pages first is pure cost, and on this
 * kind of VM a fresh page is expensive to touch. perf over b (one 256 MiB file through a chain):
 * each receiving node spent ~0.58 CPU-s in that copy (`copy_folio_from_iter_atomic`) of ~1.5, on
 * a machine whose two cores were the limit. A 256 MiB O_DIRECT write loop takes ~0.02 CPU-s.
 *
 * O_DIRECT wants the buffer's address, the file offset and the length aligned. Offsets are
 * multiples of BLOCK_BYTES; the buffer is a slot of a WebAssembly.Memory (the one page-aligned
 * memory JS can allocate); the last block is padded and the file truncated to its size after.
 * A filesystem that refuses O_DIRECT (EINVAL at open or write: tmpfs on older kernels, some FUSE)
 * gets the buffered path, with nothing lost but the saving.
 */
export const DIRECT_ALIGN_BYTES = 4096;
/** Aligned block buffers in the process (each a BLOCK_BYTES slot, touched once, kept). */
export const DIRECT_SLOTS = 4;

const WASM_PAGE_BYTES = 65536;

/** The part of WebAssembly.Memory used here (the project's TypeScript libs do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
const { Memory } = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => WasmMemory };
  }
).WebAssembly;

/** A fixed set of page-aligned BLOCK_BYTES buffers; `acquire` waits for a free one. */
export class AlignedSlots {
  private memory: WasmMemory | null = null;
  private free: Buffer[] = [];
  private readonly waiting: ((b: Buffer) => void)[] = [];

  constructor(private readonly slots: number) {}

  /** A slot, for the caller alone until `release`. Memory is reserved on first use only. */
  async acquire(): Promise<Buffer> {
    if (this.memory === null) {
      const pages = (this.slots * BLOCK_BYTES) / WASM_PAGE_BYTES;
      this.memory = new Memory({ initial: pages, maximum: pages });
      const buf = this.memory.buffer;
      for (let i = 0; i < this.slots; i++)
        this.free.push(Buffer.from(buf, i * BLOCK_BYTES, BLOCK_BYTES));
    }
    const b = this.free.pop();
    if (b !== undefined) return b;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(b: Buffer): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(b);
    else this.free.push(b);
  }
}

const slots = new AlignedSlots(DIRECT_SLOTS);

/** `n` rounded up to the alignment O_DIRECT wants. */
const aligned = (n: number): number => Math.ceil(n / DIRECT_ALIGN_BYTES) * DIRECT_ALIGN_BYTES;

const isEinval = (e: unknown): boolean => (e as NodeJS.ErrnoException | null)?.code === 'EINVAL';

/** Opens a file; the default is fs/promises' open (tests inject refusals). */
export type Opener = (path: string, flags: number) => Promise<FileHandle>;

/**
 * A download's temp file: written block by block at block offsets, with O_DIRECT where the
 * filesystem takes it. `direct` says which path it is on now; it drops to buffered for good at
 * the first EINVAL.
 */
export class DownloadFile implements DownloadSink {
  private constructor(
    private fh: FileHandle,
    private readonly path: string,
    public direct: boolean,
    private readonly opener: Opener,
  ) {}

  static async open(path: string, opener: Opener = open): Promise<DownloadFile> {
    const flags = constants.O_RDWR | constants.O_CREAT;
    try {
      return new DownloadFile(await opener(path, flags | constants.O_DIRECT), path, true, opener);
    } catch (e) {
      if (!isEinval(e)) throw e;
      log.debug('O_DIRECT refused at open; buffered writes', { path });
      return new DownloadFile(await opener(path, flags), path, false, opener);
    }
  }

  get handle(): FileHandle {
    return this.fh;
  }

  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  datasync(): Promise<void> {
    return this.fh.datasync();
  }

  truncate(size: number): Promise<void> {
    return this.fh.truncate(size);
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  /** Write `data` (at most one block) at `position` (a multiple of BLOCK_BYTES). */
  async write(data: Uint8Array, position: number): Promise<void> {
    if (this.direct) {
      const slot = await slots.acquire();
      try {
        slot.set(data);
        const len = aligned(data.length);
        // The padding lands past the file's end and is truncated away; zeros, not another
        // block's bytes, in case a crash leaves the temp file as it is.
        slot.fill(0, data.length, len);
        await writeAll(this.fh, slot, len, position);
        return;
      } catch (e) {
        if (!isEinval(e)) throw e;
        log.debug('O_DIRECT refused at write; buffered writes', { path: this.path });
        await this.toBuffered();
      } finally {
        slots.release(slot);
      }
    }
    await writeAll(this.fh, data, data.length, position);
  }

  private async toBuffered(): Promise<void> {
    const old = this.fh;
    this.fh = await this.opener(this.path, constants.O_RDWR);
    this.direct = false;
    await old.close();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

async function writeAll(
  fh: FileHandle,
  buf: Uint8Array,
  length: number,
  position: number,
): Promise<void> {
  for (let done = 0; done < length;) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    if (bytesWritten === 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

/**
 * Bytes [offset, offset + length) of a file written with O_DIRECT, read the same way (a buffered
 * read would fill fresh page-cache pages only to copy out of them), into a buffer of its own.
 * Null if the file is shorter; falls back to a buffered read where O_DIRECT is refused.
 */
export async function readDirect(
  path: string,
  offset: number,
  length: number,
  opener: Opener = open,
): Promise<Buffer | null> {
  if (length > BLOCK_BYTES) throw new RangeError('readDirect reads at most one block');
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
  try {
    const fh = await opener(path, flags | constants.O_DIRECT);
    const slot = await slots.acquire();
    try {
      const got = await readExact(fh, slot, aligned(length), offset, length);
      return got === null ? null : Buffer.from(got);
    } finally {
      slots.release(slot);
      await fh.close();
    }
  } catch (e) {
    if (!isEinval(e)) return null;
  }
  try {
    const fh = await opener(path, flags);
    try {
      return await readExact(fh, Buffer.allocUnsafe(length), length, offset);
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}

/** Read up to `want` bytes; the first `need` of them (all, by default) must be there. */
async function readExact(
  fh: FileHandle,
  buf: Buffer,
  want: number,
  position: number,
  need = want,
): Promise<Buffer | null> {
  let filled = 0;
  while (filled < want) {
    const { bytesRead } = await fh.read(buf, filled, want - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled >= need ? buf.subarray(0, need) : null;
}
