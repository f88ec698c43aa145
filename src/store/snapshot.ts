import CRC32 from 'crc-32';
import path from 'node:path';
import { isNodeId, State, type Entry, type NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import { decodeAcks, encodeAcks, packr, toEntry } from './codec.js';
import type { StoreDisk } from './disk.js';
import { isErrno } from './fsutil.js';

const log = logger('store');

const MAGIC = Buffer.from('WKVSNAP1', 'latin1');
const HEADER_BYTES = 24;
const FORMAT_VERSION = 1;

/** Steps of taking a snapshot, named so crash tests can stop between any two. */
export type SnapshotStep = 'tmp-written' | 'tmp-synced' | 'bak-renamed' | 'renamed' | 'dir-synced';

export interface SnapshotMeta {
  nodeId: NodeId;
  nextSeq: number;
  /** The first WAL segment not covered by this snapshot. */
  walSegment: number;
}

/**
 * Serialise the state as one consistent view. Columnar arrays keep 1M entries fast to encode
 * and decode. Synchronous on purpose: nothing may change the state while it runs.
 */
export function encodeSnapshot(state: State, meta: SnapshotMeta): Buffer {
  const keys: string[] = [];
  const values: (Uint8Array | null)[] = [];
  const nodes: number[] = [];
  const seqs: number[] = [];
  const tss: number[] = [];
  let sizeHintBytes = 1024;
  for (const e of state.entries()) {
    sizeHintBytes += e.key.length + (e.value?.length ?? 0) + 32;
    keys.push(e.key);
    values.push(e.value);
    nodes.push(e.meta.node);
    seqs.push(e.meta.seq);
    tss.push(e.meta.ts);
  }
  const body = packr.pack(
    [
      FORMAT_VERSION,
      meta.nodeId,
      meta.nextSeq,
      meta.walSegment,
      encodeAcks(state.acks()),
      [...state.members],
      keys,
      values,
      nodes,
      seqs,
      tss,
      state.clearedTs,
    ],
    sizeHintBytes,
  );
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeInt32LE(CRC32.buf(body), 8);
  header.writeBigUInt64LE(BigInt(body.length), 16);
  return Buffer.concat([header, body]);
}

export interface LoadedSnapshot extends SnapshotMeta {
  state: State;
}

/** Decode and validate a snapshot file's bytes; null (with the reason logged) if unusable. */
export function decodeSnapshot(
  buf: Buffer,
  nodeId: NodeId,
  name: string,
  nowMs: number,
): LoadedSnapshot | null {
  const fail = (why: string): null => {
    log.warn('snapshot unusable', { file: name, reason: why });
    return null;
  };
  if (buf.length < HEADER_BYTES || !buf.subarray(0, 8).equals(MAGIC)) return fail('bad magic');
  const bodyLen = buf.readBigUInt64LE(16);
  if (bodyLen !== BigInt(buf.length - HEADER_BYTES)) return fail('length mismatch');
  const body = buf.subarray(HEADER_BYTES);
  if (CRC32.buf(body) !== buf.readInt32LE(8)) return fail('checksum mismatch');
  let x: unknown;
  try {
    x = packr.unpack(body);
  } catch (e) {
    return fail(`undecodable: ${(e as Error).message}`);
  }
  if (!Array.isArray(x) || x.length !== 12 || x[0] !== FORMAT_VERSION) {
    return fail('unknown format');
  }
  const [, node, nextSeq, walSegment, acksRaw, members, keys, values, nodes, seqs, tss, clearedTs] =
    x as unknown[];
  if (typeof clearedTs !== 'number' || !Number.isSafeInteger(clearedTs) || clearedTs < 0) {
    return fail('bad clearedTs');
  }
  if (node !== nodeId) return fail(`snapshot of node ${String(node)}, not ${nodeId}`);
  if (typeof nextSeq !== 'number' || !Number.isSafeInteger(nextSeq) || nextSeq < 1)
    return fail('bad nextSeq');
  if (typeof walSegment !== 'number' || !Number.isSafeInteger(walSegment) || walSegment < 0) {
    return fail('bad walSegment');
  }
  const acks = decodeAcks(acksRaw);
  if (acks === null) return fail('bad acks');
  if (!Array.isArray(members) || !members.every(isNodeId)) return fail('bad members');
  const cols = [keys, values, nodes, seqs, tss];
  if (!cols.every(Array.isArray)) return fail('bad columns');
  const n = (keys as unknown[]).length;
  if (!cols.every((c) => (c as unknown[]).length === n)) return fail('column lengths differ');
  const state = new State(nodeId);
  for (let i = 0; i < n; i++) {
    const e: Entry | null = toEntry(
      (keys as unknown[])[i],
      (values as unknown[])[i],
      (nodes as unknown[])[i],
      (seqs as unknown[])[i],
      (tss as unknown[])[i],
    );
    if (e === null) return fail(`bad entry ${i}`);
    state.apply({ type: 'set', entry: e }, nowMs);
  }
  for (const m of members) state.apply({ type: 'add-peer', peer: m });
  state.restoreAcks(acks);
  state.clearedTs = Math.max(state.clearedTs, clearedTs);
  state.nextSeq = Math.max(state.nextSeq, nextSeq);
  return { state, nodeId, nextSeq: state.nextSeq, walSegment };
}

/** Newest valid snapshot: `snapshot`, else `snapshot.bak`, else null. */
export async function loadSnapshot(
  disk: StoreDisk,
  dataDir: string,
  nodeId: NodeId,
  nowMs: number,
): Promise<LoadedSnapshot | null> {
  for (const name of ['snapshot', 'snapshot.bak']) {
    let buf: Buffer;
    try {
      buf = await disk.readFile(path.join(dataDir, name));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) continue;
      throw e;
    }
    const snap = decodeSnapshot(buf, nodeId, name, nowMs);
    if (snap !== null) {
      if (name !== 'snapshot') log.warn('recovering from the backup snapshot', { file: name });
      return snap;
    }
  }
  return null;
}

/**
 * Install a snapshot atomically: write a temp file, fsync it, keep the current one as `.bak`,
 * rename the temp over `snapshot`, fsync the directory. A crash between any two steps leaves
 * either the old snapshot, or its `.bak`, or the new one, each with the WAL it needs.
 */
export async function writeSnapshot(
  disk: StoreDisk,
  dataDir: string,
  bytes: Buffer,
  crashAfter?: (step: SnapshotStep) => void,
): Promise<void> {
  const step = crashAfter ?? (() => undefined);
  const file = path.join(dataDir, 'snapshot');
  const tmp = `${file}.tmp`;
  const fh = await disk.open(tmp, 'w');
  try {
    await fh.append(bytes);
    step('tmp-written');
    await fh.sync();
  } finally {
    await fh.close();
  }
  step('tmp-synced');
  try {
    await disk.rename(file, `${file}.bak`);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
  }
  step('bak-renamed');
  await disk.rename(tmp, file);
  step('renamed');
  await disk.fsyncDir(dataDir);
  step('dir-synced');
}
