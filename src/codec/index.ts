/**
 * codec — msgpack for every layer that turns values into bytes (store, transport, filesync).
 *
 * It exists for one fault of msgpackr in a long-running process: msgpackr keeps a single
 * encode buffer for the whole process (module state shared by every Packr), hands out views
 * into it, and sizes each new buffer like the largest one so far. One 50 MiB disk-index save
 * would make every later buffer 50 MiB, and any small encoded value still referenced pins one.
 * `Codec.pack` puts msgpackr back on a small buffer after a large encode, and `unpack` decodes
 * through a throwaway view, because msgpackr caches a DataView as a property on its input (about
 * 150 bytes added to every kept value that is ever decoded).
 *
 * Must not touch: the disk, the network, what the values mean.
 */
import { Packr, type Options } from 'msgpackr';

/** An encode whose buffer is larger than this leaves msgpackr on a fresh small buffer. */
export const MAX_SHARED_ENCODE_BUFFER_BYTES = 1024 * 1024;
/** Size of that fresh buffer (msgpackr's own first buffer is 8 KiB). */
export const FRESH_ENCODE_BUFFER_BYTES = 64 * 1024;

export type CodecOptions = Options;

export class Codec {
  private readonly packr: Packr;

  constructor(options: CodecOptions) {
    this.packr = new Packr(options);
  }

  /**
   * Encode; the result is a view that stays valid (msgpackr never writes over handed-out
   * bytes). `sizeHintBytes`, for large values, is about what the encoding will take: msgpackr
   * then writes into one buffer of that size instead of growing its own 4× at a time and
   * copying (packing 25 MB went through ~100 MB of buffers).
   */
  pack(value: unknown, sizeHintBytes = 0): Buffer {
    if (sizeHintBytes > FRESH_ENCODE_BUFFER_BYTES) {
      this.packr.useBuffer(Buffer.allocUnsafeSlow(Math.ceil(sizeHintBytes * 1.05) + 4096));
    }
    const out = this.packr.pack(value);
    if (out.buffer.byteLength > MAX_SHARED_ENCODE_BUFFER_BYTES) {
      this.packr.useBuffer(Buffer.allocUnsafeSlow(FRESH_ENCODE_BUFFER_BYTES));
    }
    return out;
  }

  /** Decode; throws on malformed input (callers validate the result). */
  unpack(bytes: Uint8Array): unknown {
    return this.packr.unpack(bytes.subarray(0));
  }
}
