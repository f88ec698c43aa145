import type { Entry, Meta } from './types.js';
import { KeptEntry } from './value-arena.js';

/** Bounds enforced on every merge, in both directions. Units are in the names. */
export interface Limits {
  /** UTF-8 bytes of a key. */
  maxKeyBytes: number;
  /** Bytes of a value. */
  maxValueBytes: number;
  /** Entries in one sync message or page. */
  maxEntriesPerMessage: number;
  /** Encoded bytes of one sync message or page (keys + values + overhead). */
  maxMessageBytes: number;
  /** Keys held, tombstones included. */
  maxKeys: number;
  /**
   * How far an entry's ts may run ahead of the local clock: a sanity bound, not a clock check.
   * Clocks hours apart are accepted (the hybrid logical clock follows them, see stampLocal).
   */
  maxFutureMs: number;
  /**
   * How far a peer's entry may put an origin's seq beyond the highest this node knows of it.
   * Seqs only grow by one per write (plus a lease step after a crash), so a jump of billions is
   * a forgery meant to exhaust the origin's seq space or to make acks skip its real writes.
   */
  maxSeqJump: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxKeyBytes: 4096,
  maxValueBytes: 1024 * 1024,
  maxEntriesPerMessage: 10_000,
  maxMessageBytes: 8 * 1024 * 1024,
  maxKeys: 10_000_000,
  maxFutureMs: 7 * 24 * 3600 * 1000,
  maxSeqJump: 2 ** 32,
});

export type RejectReason =
  | 'empty-key'
  | 'key-too-long'
  | 'value-too-large'
  | 'future-ts'
  | 'too-many-keys'
  | 'too-many-entries'
  | 'message-too-large'
  | 'own-origin'
  | 'seq-jump'
  | 'admission';

export interface Rejection {
  readonly key: string;
  readonly reason: RejectReason;
  readonly detail: string;
  /** The refused write's meta, when the refusal is about one entry. */
  readonly meta?: Meta;
}

/**
 * The embedder's say over which entries may enter: return null to admit, or a reason to reject
 * (filesync rejects unsafe paths this way).
 */
export type AdmissionHook = (entry: Entry) => string | null;

/**
 * Encoded bytes an entry costs in a message: key, value and a fixed allowance for meta. A kept
 * entry is asked its length, not for a view of its value (every delta and page costs each).
 */
export function entryWireBytes(e: Entry): number {
  const valueBytes = e instanceof KeptEntry ? e.valueBytes : (e.value?.length ?? 0);
  return utf8Length(e.key) + valueBytes + 32;
}

export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Check one entry against the per-entry limits and the admission hook. */
export function checkEntry(
  e: Entry,
  nowMs: number,
  limits: Readonly<Limits>,
  admit?: AdmissionHook,
): Rejection | null {
  if (e.key.length === 0) return { key: e.key, reason: 'empty-key', detail: 'key is empty' };
  const keyBytes = utf8Length(e.key);
  if (keyBytes > limits.maxKeyBytes) {
    return reject(e, 'key-too-long', `key is ${keyBytes} bytes, limit ${limits.maxKeyBytes}`);
  }
  const valueBytes = e.value?.length ?? 0;
  if (valueBytes > limits.maxValueBytes) {
    return reject(
      e,
      'value-too-large',
      `value is ${valueBytes} bytes, limit ${limits.maxValueBytes}`,
    );
  }
  const aheadMs = e.meta.ts - nowMs;
  if (aheadMs > limits.maxFutureMs) {
    return reject(
      e,
      'future-ts',
      `ts is ${aheadMs} ms ahead of the local clock, limit ${limits.maxFutureMs}`,
    );
  }
  if (admit !== undefined) {
    const reason = admit(e);
    if (reason !== null) return reject(e, 'admission', reason);
  }
  return null;
}

export function reject(e: Entry, reason: RejectReason, detail: string): Rejection {
  const key = e.key.length > 200 ? e.key.slice(0, 200) + '…' : e.key;
  return { key, reason, detail, meta: e.meta };
}
