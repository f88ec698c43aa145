import type { Entry } from '../core/index.js';
import { admitSyncEntry } from '../sync/index.js';
import { decodeRecord, isOwnEncoding } from './record.js';

/** Files live under `__file/<path>` in the KV. */
export const FILE_PREFIX = '__file/';
/** Folder (under the root) that filesync never syncs: data dir, temp files, trash. */
export const RESERVED_DIR = '.filesync';
export const MAX_PATH_BYTES = 4096;

/**
 * `root/rel` for a `rel` that passed `pathProblem` (no empty, `.` or `..` segment): nothing to
 * normalise, so no `path.join`, whose normalising was ~10 % of what a receiving node allocated.
 */
export function absPath(root: string, rel: string): string {
  return root.endsWith('/') ? root + rel : `${root}/${rel}`;
}

/**
 * Why `p` is not a safe relative path, or null when it is: relative, `/`-separated, NFC, no
 * empty, `.` or `..` segment, no NUL or backslash, not under `.filesync/`, ≤ 4096 bytes.
 */
export function pathProblem(p: string): string | null {
  if (p.length === 0) return 'empty path';
  // Checked for every path on every scan and apply: the costly steps (UTF-8 length, NFC,
  // splitting) run only when a cheap test says they could find something.
  if (p.length * 3 > MAX_PATH_BYTES && Buffer.byteLength(p) > MAX_PATH_BYTES)
    return `path longer than ${MAX_PATH_BYTES} bytes`;
  if (p.includes('\0')) return 'NUL in path';
  if (p.includes('\\')) return 'backslash in path';
  if (p.startsWith('/')) return 'absolute path';
  if (!ASCII.test(p) && p.normalize('NFC') !== p) return 'path not in NFC';
  if (BAD_SEGMENT.test(p)) {
    const seg = p.split('/').find((s) => s === '' || s === '.' || s === '..') ?? '';
    return `bad segment ${JSON.stringify(seg)}`;
  }
  if (p === RESERVED_DIR || p.startsWith(RESERVED_DIR + '/')) return `path under ${RESERVED_DIR}/`;
  if (p.length > MAX_SEGMENT_BYTES / 3) return segmentProblem(p);
  return null;
}

/** Longest name of one file or directory most filesystems take (NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

/** A segment longer than any filesystem takes: refused, not retried at every apply. */
function segmentProblem(p: string): string | null {
  for (let i = 0; i < p.length;) {
    let j = p.indexOf('/', i);
    if (j < 0) j = p.length;
    if (j - i > MAX_SEGMENT_BYTES / 3 && Buffer.byteLength(p.slice(i, j)) > MAX_SEGMENT_BYTES)
      return `a name longer than ${MAX_SEGMENT_BYTES} bytes`;
    i = j + 1;
  }
  return null;
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;
/** An empty, `.` or `..` segment anywhere in a `/`-separated path. */
const BAD_SEGMENT = /(?:^|\/)\.{0,2}(?:\/|$)/;

export function keyOf(path: string): string {
  return FILE_PREFIX + path;
}

export function pathOf(key: string): string | null {
  return key.startsWith(FILE_PREFIX) ? key.slice(FILE_PREFIX.length) : null;
}

/**
 * The admission hook filesync gives WaveKV: only membership records and file records with a
 * safe path and a well-formed value get in. A bad entry from a peer is rejected, counted and
 * logged by the core, and never reaches the disk.
 */
export function admitFileEntry(e: Entry): string | null {
  const sync = admitSyncEntry(e);
  if (sync !== undefined) return sync;
  const p = pathOf(e.key);
  if (p === null) return 'not a filesync key';
  const problem = pathProblem(p);
  if (problem !== null) return `unsafe path: ${problem}`;
  if (e.value !== null && !isOwnEncoding(e.value) && decodeRecord(e.value) === null)
    return 'malformed file record';
  return null;
}

/** `a/b/c.txt` → `a/b/c.sync-conflict-<node>-<seq>.txt`: every node derives the same name. */
export function conflictName(path: string, node: number, seq: number): string {
  const slash = path.lastIndexOf('/');
  const dir = slash >= 0 ? path.slice(0, slash + 1) : '';
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
  return `${dir}${stem}.sync-conflict-${node}-${seq}${ext}`;
}

export function isConflictCopy(path: string): boolean {
  return /\.sync-conflict-\d+-\d+(\.[^/]*)?$/.test(path);
}

/** The path a conflict copy was made from. */
export function conflictOrigin(path: string): string {
  return path.replace(/\.sync-conflict-\d+-\d+(?=(\.[^/.]*)?$)/, '');
}
