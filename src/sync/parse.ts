import { isEntry, isNodeId } from '../core/index.js';
import {
  BUCKET_COUNT,
  MAX_BATCH_BYTES,
  MAX_BATCH_REFS,
  MAX_BLOCK_BYTES,
  type AcksWire,
  type EntryWire,
  type SyncMessage,
} from './messages.js';

/**
 * Checking what comes off the wire: every message goes through `parseMessage`, a table of
 * checks per type, before anything uses it. Bad input is a ProtocolError with a one-line reason.
 */
export class ProtocolError extends Error {}

const isRid = (x: unknown): x is number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isBool = (x: unknown): x is boolean => typeof x === 'boolean';
const isStr = (x: unknown, max: number): x is string => typeof x === 'string' && x.length <= max;

function isEntryWire(x: unknown): x is EntryWire {
  if (!Array.isArray(x) || x.length !== 5) return false;
  const v: unknown = x[1];
  return isEntry({
    key: x[0],
    value: v === undefined ? null : v,
    meta: { node: x[2], seq: x[3], ts: x[4] },
  });
}

function isEntries(x: unknown, maxEntries: number): x is EntryWire[] {
  return Array.isArray(x) && x.length <= maxEntries && x.every(isEntryWire);
}

function isAcksWire(x: unknown): x is AcksWire {
  if (!Array.isArray(x) || x.length % 2 !== 0 || x.length > 2 * 100_000) return false;
  for (let i = 0; i < x.length; i += 2) {
    const s: unknown = x[i + 1];
    if (!isNodeId(x[i]) || typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) return false;
  }
  return true;
}

/**
 * Validate a decoded frame as a sync message. Throws ProtocolError naming what is wrong; the
 * transport closes the connection with that reason.
 */
export function parseMessage(x: unknown, maxEntries: number): SyncMessage {
  if (typeof x !== 'object' || x === null || Array.isArray(x))
    throw new ProtocolError('message is not a map');
  const m = x as Record<string, unknown>;
  const check = typeof m.t === 'string' ? CHECKS.get(m.t) : undefined;
  if (check === undefined) throw new ProtocolError(`unknown message type ${JSON.stringify(m.t)}`);
  const bad = check(m, maxEntries).find(([ok]) => !ok);
  if (bad !== undefined) throw new ProtocolError(`bad ${String(m.t)} message: ${bad[1]}`);
  if ('entries' in m) compactValues(m.entries as EntryWire[]);
  return m as unknown as SyncMessage;
}

/** One message type's field checks: each a (passes, what it names) pair, the first failing reported. */
type Checks = (m: Record<string, unknown>, maxEntries: number) => [boolean, string][];

const isBlockRefWire = (r: unknown): boolean =>
  Array.isArray(r) &&
  r.length === 5 &&
  isStr(r[0], 8192) &&
  isNodeId(r[1]) &&
  isRid(r[2]) &&
  isRid(r[3]) &&
  isStr(r[4], 64);
const isBlock = (d: unknown): d is Uint8Array =>
  d instanceof Uint8Array && d.length <= MAX_BLOCK_BYTES;

/** A batch answer: blocks or nulls, within the batch's count and bytes. */
function isBlockBatch(data: unknown): boolean {
  if (!Array.isArray(data) || data.length > MAX_BATCH_REFS) return false;
  let total = 0;
  return data.every(
    (d) => d === null || (isBlock(d) && (total += d.length) <= MAX_BATCH_BYTES + MAX_BLOCK_BYTES),
  );
}

/** Every message type a peer may send, and what each must hold. */
const CHECKS = new Map<string, Checks>([
  [
    'sync',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [isNodeId(m.from), 'from'],
      [isStr(m.incarnation, 64), 'incarnation'],
      [isAcksWire(m.acks), 'acks'],
      [isEntries(m.entries, n), 'entries'],
      [isBool(m.complete) && isBool(m.reset), 'flags'],
    ],
  ],
  ['page', (m) => [[isRid(m.rid) && isRid(m.round) && isRid(m.offset), 'rid, round or offset']]],
  ['buckets', (m) => [[isRid(m.rid), 'rid']]],
  [
    'sync-res',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [isAcksWire(m.acks), 'acks'],
      [isStr(m.digest, 64), 'digest'],
      [isEntries(m.entries, n), 'entries'],
      [isBool(m.last) && isBool(m.merged), 'flags'],
      [isRid(m.yours), 'yours'],
    ],
  ],
  [
    'push',
    (m, n) => [
      [isRid(m.id), 'id'],
      [isEntries(m.entries, n), 'entries'],
    ],
  ],
  ['push-ok', (m) => [[isRid(m.id), 'id']]],
  ['sync-ok', (m) => [[isRid(m.round), 'round']]],
  [
    'buckets-res',
    (m) => [
      [isRid(m.rid), 'rid'],
      [
        Array.isArray(m.digests) &&
          m.digests.length === BUCKET_COUNT &&
          m.digests.every((d) => isStr(d, 64)),
        'digests',
      ],
    ],
  ],
  [
    'bucket-entries',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [
        Array.isArray(m.buckets) &&
          m.buckets.length <= BUCKET_COUNT &&
          m.buckets.every((b) => Number.isInteger(b) && b >= 0 && b < BUCKET_COUNT),
        'buckets',
      ],
      [isEntries(m.entries, n), 'entries'],
    ],
  ],
  [
    'bucket-entries-res',
    (m, n) => [
      [isRid(m.rid), 'rid'],
      [isEntries(m.entries, n), 'entries'],
    ],
  ],
  [
    'block',
    (m) => [
      [
        isRid(m.rid) && isStr(m.key, 8192) && isNodeId(m.node) && isRid(m.seq) && isRid(m.index),
        'fields',
      ],
      [isStr(m.hash, 64), 'hash'],
    ],
  ],
  [
    'block-res',
    (m) => [
      [isRid(m.rid), 'rid'],
      [m.data === null || isBlock(m.data), 'data'],
    ],
  ],
  [
    'blocks',
    (m) => [
      [isRid(m.rid), 'rid'],
      [
        Array.isArray(m.refs) && m.refs.length <= MAX_BATCH_REFS && m.refs.every(isBlockRefWire),
        'refs',
      ],
    ],
  ],
  [
    'blocks-res',
    (m) => [
      [isRid(m.rid), 'rid'],
      [isBlockBatch(m.data), 'data'],
    ],
  ],
  [
    'error',
    (m) => [
      [isRid(m.rid), 'rid'],
      [isStr(m.message, 1000), 'message'],
    ],
  ],
]);

/**
 * Copy a message's values out of the frame into one buffer of their own, so values that live
 * on in the state neither pin the whole frame (keys, other messages' bytes) nor cost one
 * allocation each.
 */
function compactValues(entries: EntryWire[]): void {
  let total = 0;
  for (const e of entries) if (e[1] !== null) total += e[1].length;
  if (total === 0) return;
  const arena = new Uint8Array(total);
  let off = 0;
  for (const e of entries) {
    const v = e[1];
    if (v === null) continue;
    arena.set(v, off);
    e[1] = arena.subarray(off, off + v.length);
    off += v.length;
  }
}
