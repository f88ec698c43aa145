import type { FileRecord, Version } from './record.js';

/** A download in progress, as the status screen shows it. */
export interface TransferStatus {
  path: string;
  bytesDone: number;
  size: number;
  startedMs: number;
}

/**
 * The content transfer as the mirror uses it: `Transfer` (blocks from local files and peers),
 * or the simulator's stand-in, which hands over content without the block protocol.
 */
export interface Content {
  /** Make the transfer's temp directory ready (and clear stale downloads). */
  init(): Promise<void>;
  /** A temp file holding version `v` of `key` with `r`'s content, ready to rename in place. */
  fetch(key: string, r: FileRecord, v: Version): Promise<string>;
  /** A file with this content was moved to `abs` in the trash (its blocks can be reused). */
  noteTrashed(hash: string, abs: string): void;
  /** Content just published: peers will ask for it in a moment. */
  keepPublished(hash: string, data: Uint8Array): void;
  /** `key`'s version may have moved: requests held for it look again. */
  progressed(key: string): void;
  /** Downloads in progress (the status screen). */
  active(): TransferStatus[];
  close(): void;
}
