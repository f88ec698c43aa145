import { Codec } from '../codec/index.js';
import type { NodeId } from '../core/index.js';

const packr = new Codec({ useRecords: false, mapsAsObjects: true });

export const BLOCK_BYTES = 1024 * 1024;

export type FileType = 'file' | 'dir' | 'symlink' | 'deleted';
const FILE_TYPES: readonly FileType[] = ['file', 'dir', 'symlink', 'deleted'];

/**
 * The one copy of a type name (a decoder makes a fresh string per record, and the disk index
 * keeps one per path: 2.3 MiB at 100,000 files); undefined for anything else.
 */
export function fileType(x: unknown): FileType | undefined {
  return FILE_TYPES.find((t) => t === x);
}

/** (node, seq) of a KV version. */
export type Version = readonly [node: NodeId, seq: number];

/**
 * What the KV says about one path. A delete is a record of type `deleted` (not a bare KV
 * tombstone) because it must carry `prev`: the version the deleter had on disk, so a delete
 * never removes an edit it did not see.
 */
export interface FileRecord {
  type: FileType;
  size: number;
  mtimeMs: number;
  /** Permission bits only (never setuid, setgid or sticky). */
  mode: number;
  /** SHA-256 of the content, hex; '' for dirs, symlinks and deletes. */
  hash: string;
  /** SHA-256 of each 1 MiB block, hex, for files larger than one block; else []. */
  blocks: string[];
  /** A symlink's text. */
  target: string | null;
  /** The version the writer had on disk when it made this change; null for a new path. */
  prev: Version | null;
  /**
   * Older ancestors (prev's prev, …), newest first, at most MAX_HISTORY. Push relay coalesces
   * rapid edits, so a peer may get v3 without ever seeing v2; v1 then still shows up here and
   * is recognised as an ancestor, not a concurrent edit.
   */
  history: Version[];
}

export const MAX_HISTORY = 16;

/** The lineage for a new version written on top of `prev`, given the record `prev` names. */
export function lineage(prev: Version | null, prevRecord: FileRecord | null): Version[] {
  if (prev === null || prevRecord === null) return [];
  return ancestorsOf(prevRecord);
}

/** One shared empty lineage (most versions are a file's first); frozen, so a push throws. */
export const NO_ANCESTORS = Object.freeze([]) as unknown as Version[];

/** The versions `r` was written on top of, newest first: what a version built on it inherits. */
export function ancestorsOf(r: FileRecord): Version[] {
  return r.prev ? [r.prev, ...r.history].slice(0, MAX_HISTORY) : NO_ANCESTORS;
}

/** Did the writer of `r` have version `v` in its lineage (so `v` is not concurrent with it)? */
export function descendsFrom(r: FileRecord, v: Version): boolean {
  return sameVersion(r.prev, v) || r.history.some((h) => sameVersion(h, v));
}

/**
 * Encodings made by `encodeRecord` in this process. Admission checks every record written to
 * the KV, and decoding our own just-made ones again was ~15 % of what a start scan allocated.
 * Held weakly: an encoding is forgotten with its bytes.
 */
const ownEncodings = new WeakSet<Uint8Array>();

/** Were these bytes made by `encodeRecord` here from a well-formed record? */
export function isOwnEncoding(v: Uint8Array): boolean {
  return ownEncodings.has(v);
}

export function encodeRecord(r: FileRecord): Uint8Array {
  const bytes = packr.pack({
    type: r.type,
    size: r.size,
    mtimeMs: r.mtimeMs,
    mode: r.mode,
    hash: r.hash,
    blocks: r.blocks,
    target: r.target,
    prev: r.prev === null ? null : [r.prev[0], r.prev[1]],
    history: r.history.slice(0, MAX_HISTORY).map((v) => [v[0], v[1]]),
  });
  // Only a record that passes the decoder's checks is trusted without them (admission still
  // refuses a malformed one made here, as it would from a peer).
  if (wellFormed(r as unknown as Record<string, unknown>)) ownEncodings.add(bytes);
  return bytes;
}

/** Checks shared by everything filesync reads off the wire or the disk. */
export const HEX64 = /^[0-9a-f]{64}$/;
export const isUint = (x: unknown): x is number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
export const isVersion = (v: unknown): v is [number, number] =>
  Array.isArray(v) && v.length === 2 && isUint(v[0]) && isUint(v[1]);

/** Decode and validate a record from the KV; null when it is not a well-formed one. */
export function decodeRecord(v: Uint8Array): FileRecord | null {
  let x: unknown;
  try {
    x = packr.unpack(v);
  } catch {
    return null;
  }
  if (typeof x !== 'object' || x === null) return null;
  const r = x as Record<string, unknown>;
  const type = fileType(r.type);
  if (type === undefined || !wellFormed(r)) return null;
  const prev = r.prev as [number, number] | null;
  return {
    history: (r.history as [number, number][]).map((v) => [v[0], v[1]] as const),
    type,
    size: r.size as number,
    mtimeMs: r.mtimeMs as number,
    mode: r.mode as number,
    hash: r.hash as string,
    blocks: r.blocks as string[],
    target: r.target as string | null,
    prev: prev === null ? null : [prev[0], prev[1]],
  };
}

/** Every field check of a record, decoded or about to be encoded. */
function wellFormed(r: Record<string, unknown>): boolean {
  if (fileType(r.type) === undefined) return false;
  if (!isUint(r.size) || typeof r.mtimeMs !== 'number' || !Number.isFinite(r.mtimeMs)) return false;
  if (!isUint(r.mode) || r.mode > 0o777) return false;
  if (typeof r.hash !== 'string' || (r.hash !== '' && !HEX64.test(r.hash))) return false;
  if (r.type === 'file' && r.hash === '') return false;
  if (!Array.isArray(r.blocks) || !r.blocks.every((b) => typeof b === 'string' && HEX64.test(b)))
    return false;
  if (
    r.target !== null &&
    (typeof r.target !== 'string' || r.target.length > 4096 || r.target.includes('\0'))
  )
    return false;
  if (r.type === 'symlink' && r.target === null) return false;
  if (!kindFits(r)) return false;
  if (r.prev !== null && !isVersion(r.prev)) return false;
  return Array.isArray(r.history) && r.history.length <= MAX_HISTORY && r.history.every(isVersion);
}

/**
 * Fields that only one kind of record has are empty in the others: a dir or a delete carries no
 * content, blocks or target, and a file exactly as many block hashes as its size needs. A record
 * that could never be applied is refused before it costs memory, a WAL record or a retry.
 */
function kindFits(r: Record<string, unknown>): boolean {
  const blocks = (r.blocks as string[]).length;
  const size = r.size as number;
  switch (r.type) {
    case 'file':
      return (
        r.target === null && blocks === (size > BLOCK_BYTES ? Math.ceil(size / BLOCK_BYTES) : 0)
      );
    case 'symlink':
      return r.hash === '' && blocks === 0 && size <= 4096 * 3;
    case 'deleted': // its hash, if any, is the content it deleted
      return blocks === 0 && r.target === null && size === 0;
    default:
      return r.hash === '' && blocks === 0 && r.target === null && size === 0;
  }
}

/** msgpack's `'deleted'` as a fixstr: a record without these bytes is not a delete. */
const DELETED_TAG = Buffer.from([0xa7, ...Buffer.from('deleted')]);

/** Longest encoding of a delete record: a hash, no blocks or target, MAX_HISTORY versions. */
const MAX_DELETE_BYTES = 128 + MAX_HISTORY * 24;

/**
 * The record of a delete: the version it deleted, that version's lineage, and the hash of the
 * file content it deleted ('' for a directory or a link): a holder of that same content under
 * another version the deleter never named (a sibling kept edit) knows the deleter saw it.
 */
export function deletedRecord(
  prev: Version | null,
  history: Version[],
  mtimeMs: number,
  hash = '',
): FileRecord {
  const none = { size: 0, mode: 0, blocks: [], target: null };
  return { type: 'deleted', mtimeMs, ...none, hash, prev, history };
}

/**
 * Is this KV value a delete record? WaveKV collects these like tombstones; it asks for every
 * value applied. A length bound and a byte search spare a full decode of every other record.
 */
export function isDeletedRecord(v: Uint8Array): boolean {
  if (v.length > MAX_DELETE_BYTES) return false;
  const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return b.includes(DELETED_TAG) && decodeRecord(v)?.type === 'deleted';
}

export function sameVersion(a: Version | null, b: Version | null): boolean {
  return a !== null && b !== null && a[0] === b[0] && a[1] === b[1];
}
