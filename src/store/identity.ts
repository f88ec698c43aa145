import { randomBytes, randomInt } from 'node:crypto';
import path from 'node:path';
import { isNodeId, type NodeId } from '../core/index.js';
import { nodeStoreDisk, writeFileAtomic, type StoreDisk } from './disk.js';
import { isErrno } from './fsutil.js';

/** The `node` file: who this data dir is, and how far seqs have been reserved. */
export interface Identity {
  id: NodeId;
  /** 128 random bits, new with every data dir: a known id with a new incarnation is a rebuilt node. */
  incarnation: string;
  /**
   * No seq above this has ever been issued. Raised (durably) before a seq past it is stamped,
   * so after any loss of WAL records the node resumes above every seq it may have handed out.
   */
  seqLease: number;
  /**
   * Set on a fresh data dir opened with a chosen id: this may be a rebuilt node whose old writes
   * live on at peers. Cleared once sync has recovered them; local writes wait until then.
   */
  awaitingSeq?: boolean;
  /**
   * Set when a rebuilt node recovered its seq: writes in its own name below this are its past
   * life's, still accepted from peers (stragglers the first round did not bring); at or above,
   * a peer's write in its name is a forgery.
   */
  pastSeqBelow?: number;
}

export class IdentityError extends Error {}

export async function readIdentity(
  dataDir: string,
  disk: StoreDisk = nodeStoreDisk,
): Promise<Identity | null> {
  let text: string;
  try {
    text = (await disk.readFile(path.join(dataDir, 'node'))).toString('utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch {
    throw new IdentityError(`${path.join(dataDir, 'node')} is not valid JSON`);
  }
  const o = x as Record<string, unknown>;
  if (
    typeof x !== 'object' ||
    x === null ||
    !isNodeId(o.id) ||
    typeof o.incarnation !== 'string' ||
    !/^[0-9a-f]{32}$/.test(o.incarnation) ||
    typeof o.seqLease !== 'number' ||
    !Number.isSafeInteger(o.seqLease) ||
    o.seqLease < 0
  ) {
    throw new IdentityError(`${path.join(dataDir, 'node')} is malformed`);
  }
  const ident: Identity = { id: o.id, incarnation: o.incarnation, seqLease: o.seqLease };
  if (o.awaitingSeq === true) ident.awaitingSeq = true;
  if (typeof o.pastSeqBelow === 'number' && Number.isSafeInteger(o.pastSeqBelow))
    ident.pastSeqBelow = o.pastSeqBelow;
  return ident;
}

export async function writeIdentity(
  dataDir: string,
  ident: Identity,
  disk: StoreDisk = nodeStoreDisk,
): Promise<void> {
  const bytes = Buffer.from(JSON.stringify(ident) + '\n');
  await writeFileAtomic(path.join(dataDir, 'node'), bytes, 0o666, disk);
}

export function newIdentity(id?: NodeId): Identity {
  return {
    id: id ?? randomInt(1, 0xffff_ffff),
    incarnation: randomBytes(16).toString('hex'),
    seqLease: 0,
  };
}
