import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isNodeId, type NodeId } from '../core/index.js';
import { MAX_BLOCK_BYTES } from '../sync/index.js';

/** Bumped on any incompatible change of the frames or the sync messages. */
export const PROTOCOL_VERSION = 4;

/** First frame each side sends on a new connection. */
export interface Hello {
  t: 'hello';
  node: NodeId;
  incarnation: string;
  advertise: string | null;
  protocol: number;
  /** Random bytes the other side must MAC with the cluster secret. */
  nonce: Uint8Array;
  /** Whether this side requires the cluster secret. */
  secret: boolean;
}

/** Proof of the cluster secret: HMAC-SHA256(secret, "filesync-auth" | peer's nonce | own id). */
export interface Auth {
  t: 'auth';
  mac: Uint8Array;
}

/** Sent before closing for a reason the other side should log. */
export interface Bye {
  t: 'bye';
  reason: string;
}

/**
 * The next frame on this connection is, raw, the `data` of the block-res answering `rid`: a
 * large block goes out as it is, never copied into an encode buffer (see sendBlock).
 */
export interface BlockHead {
  t: 'block-head';
  rid: number;
  bytes: number;
}

export type ControlFrame = Hello | Auth | Bye | BlockHead;

export function newNonce(): Buffer {
  return randomBytes(32);
}

export function authMac(secret: string, peerNonce: Uint8Array, self: NodeId): Buffer {
  const h = createHmac('sha256', secret);
  h.update('filesync-auth\0');
  h.update(peerNonce);
  const id = Buffer.alloc(4);
  id.writeUInt32BE(self);
  h.update(id);
  return h.digest();
}

export function macMatches(expected: Buffer, got: Uint8Array): boolean {
  return got.length === expected.length && timingSafeEqual(expected, got);
}

/** Validate a control frame's shape; null when it is not one. */
export function parseControl(x: unknown): ControlFrame | null {
  if (typeof x !== 'object' || x === null) return null;
  const m = x as Record<string, unknown>;
  switch (m.t) {
    case 'hello':
      if (
        isNodeId(m.node) &&
        typeof m.incarnation === 'string' &&
        m.incarnation.length <= 64 &&
        (m.advertise === null || (typeof m.advertise === 'string' && m.advertise.length <= 300)) &&
        typeof m.protocol === 'number' &&
        m.nonce instanceof Uint8Array &&
        m.nonce.length === 32 &&
        typeof m.secret === 'boolean'
      ) {
        return m as unknown as Hello;
      }
      throw new Error('malformed hello');
    case 'auth':
      if (m.mac instanceof Uint8Array && m.mac.length === 32) return m as unknown as Auth;
      throw new Error('malformed auth');
    case 'bye':
      if (typeof m.reason === 'string' && m.reason.length <= 500) return m as unknown as Bye;
      throw new Error('malformed bye');
    case 'block-head':
      if (
        Number.isSafeInteger(m.rid) &&
        (m.rid as number) >= 0 &&
        Number.isSafeInteger(m.bytes) &&
        (m.bytes as number) > 0 &&
        (m.bytes as number) <= MAX_BLOCK_BYTES
      )
        return m as unknown as BlockHead;
      throw new Error('malformed block-head');
    default:
      return null;
  }
}

/** Is `host` a loopback address (safe to bind without a secret)? */
export function isLoopback(host: string): boolean {
  return (
    host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
  );
}
