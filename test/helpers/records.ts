import { randomBytes } from 'node:crypto';
import { sha256 } from '../../src/filesync/hasher.js';
import { encodeRecord, type FileRecord } from '../../src/filesync/record.js';

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

/**
 * An encoded FileRecord for a hostile peer to push: a 100-byte file whose content nobody has
 * (a random hash), with `over` applied.
 */
export function junkRecord(over: Partial<FileRecord> = {}): Uint8Array {
  return encodeRecord({
    type: 'file',
    size: 100,
    mtimeMs: Date.now(),
    mode: 0o644,
    hash: randomBytes(32).toString('hex'),
    blocks: [],
    target: null,
    prev: null,
    history: [],
    ...over,
  });
}
