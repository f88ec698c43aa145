import { Codec } from '../codec/index.js';
import { isEntry, isMeta, isNodeId, type Acks, type Entry, type StateOp } from '../core/index.js';

/**
 * msgpack with plain arrays and maps (no msgpackr records, so files stay readable by any
 * msgpack decoder), binary decoded into copies so one value never pins a whole read buffer.
 */
export const packr = new Codec({ useRecords: false, copyBuffers: true, mapsAsObjects: true });

const OP_SET = 1;
const OP_CLEAR = 2;
const OP_ADD_PEER = 3;
const OP_REMOVE_PEER = 4;

export class CorruptRecordError extends Error {}

/** Ops are stored as small arrays: [type, …fields]. */
export function encodeOp(op: StateOp): unknown[] {
  switch (op.type) {
    case 'set': {
      const { key, value, meta } = op.entry;
      return [OP_SET, key, value, meta.node, meta.seq, meta.ts];
    }
    case 'clear':
      return [OP_CLEAR, op.key, op.meta.node, op.meta.seq, op.meta.ts];
    case 'add-peer':
      return [OP_ADD_PEER, op.peer];
    case 'remove-peer':
      return [OP_REMOVE_PEER, op.peer];
  }
}

/** Decode and validate an op read off the disk; throws CorruptRecordError on any mismatch. */
export function decodeOp(x: unknown): StateOp {
  if (!Array.isArray(x)) throw new CorruptRecordError('op is not an array');
  switch (x[0]) {
    case OP_SET: {
      const entry = toEntry(x[1], x[2], x[3], x[4], x[5]);
      if (entry === null || x.length !== 6) throw new CorruptRecordError('bad set op');
      return { type: 'set', entry };
    }
    case OP_CLEAR: {
      const meta = { node: x[2], seq: x[3], ts: x[4] };
      if (typeof x[1] !== 'string' || !isMeta(meta) || x.length !== 5) {
        throw new CorruptRecordError('bad clear op');
      }
      return { type: 'clear', key: x[1], meta };
    }
    case OP_ADD_PEER:
    case OP_REMOVE_PEER:
      if (!isNodeId(x[1]) || x.length !== 2) throw new CorruptRecordError('bad peer op');
      return { type: x[0] === OP_ADD_PEER ? 'add-peer' : 'remove-peer', peer: x[1] };
    default:
      throw new CorruptRecordError(`unknown op type ${String(x[0])}`);
  }
}

export function toEntry(
  key: unknown,
  value: unknown,
  node: unknown,
  seq: unknown,
  ts: unknown,
): Entry | null {
  const e = { key, value: value === undefined ? null : value, meta: { node, seq, ts } };
  return isEntry(e) ? e : null;
}

export function encodeAcks(acks: ReadonlyMap<number, number>): number[] {
  const out: number[] = [];
  for (const [node, seq] of acks) out.push(node, seq);
  return out;
}

export function decodeAcks(x: unknown): Acks | null {
  if (!Array.isArray(x) || x.length % 2 !== 0) return null;
  const acks: Acks = new Map();
  for (let i = 0; i < x.length; i += 2) {
    const node: unknown = x[i];
    const seq: unknown = x[i + 1];
    if (!isNodeId(node) || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0)
      return null;
    acks.set(node, seq);
  }
  return acks;
}
