import { sha256 } from '../../src/filesync/hasher.js';
import type { FileRecord } from '../../src/filesync/record.js';

/** The FileRecord of a new regular file (one block at most) holding `content`. */
export function fileRecordOf(content: Uint8Array, mtimeMs = 0): FileRecord {
  return {
    type: 'file',
    size: content.length,
    mtimeMs,
    mode: 0o644,
    hash: sha256(content),
    blocks: [],
    target: null,
    prev: null,
    history: [],
  };
}
