import { isNodeId, type NodeId } from '../core/index.js';

/** Membership rides on the data: every node writes its address under `__peer/<id>`. */
export const PEER_PREFIX = '__peer/';

export interface PeerRecord {
  /** host:port the node can be dialled at, or null when it only dials out. */
  addr: string | null;
  incarnation: string;
}

export function peerKey(id: NodeId): string {
  return `${PEER_PREFIX}${id}`;
}

export function peerIdOf(key: string): NodeId | null {
  if (!key.startsWith(PEER_PREFIX)) return null;
  const rest = key.slice(PEER_PREFIX.length);
  if (!/^[1-9]\d{0,9}$/.test(rest)) return null;
  const id = Number(rest);
  return isNodeId(id) ? id : null;
}

export function encodePeerRecord(r: PeerRecord): Uint8Array {
  return Buffer.from(JSON.stringify({ addr: r.addr, incarnation: r.incarnation }));
}

/** Parse a peer record from replicated data; null if it is not one (never trusted blindly). */
export function decodePeerRecord(v: Uint8Array): PeerRecord | null {
  if (v.length > 1024) return null;
  try {
    const x = JSON.parse(Buffer.from(v).toString('utf8')) as unknown;
    if (typeof x !== 'object' || x === null) return null;
    const o = x as Record<string, unknown>;
    const addr =
      o.addr === null || (typeof o.addr === 'string' && o.addr.length <= 300) ? o.addr : undefined;
    if (addr === undefined || typeof o.incarnation !== 'string' || o.incarnation.length > 64)
      return null;
    return { addr, incarnation: o.incarnation };
  } catch {
    return null;
  }
}
