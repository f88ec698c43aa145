import { isNodeId, type Entry, type NodeId } from '../core/index.js';

/** Membership rides on the data: every node writes its address under `__peer/<id>`. */
export const PEER_PREFIX = '__peer/';

export interface PeerRecord {
  /** host:port the node can be dialled at, or null when it only dials out. */
  addr: string | null;
  incarnation: string;
  /** The device ID it runs on (its certificate's), if its transport has one. */
  device?: string;
}

export function peerKey(id: NodeId): string {
  return `${PEER_PREFIX}${id}`;
}

export function peerIdOf(key: string): NodeId | null {
  return idAfter(PEER_PREFIX, key);
}

export function encodePeerRecord(r: PeerRecord): Uint8Array {
  const o: PeerRecord = { addr: r.addr, incarnation: r.incarnation };
  if (r.device !== undefined) o.device = r.device;
  return Buffer.from(JSON.stringify(o));
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
    if (o.device !== undefined && (typeof o.device !== 'string' || o.device.length > 64))
      return null;
    const rec: PeerRecord = { addr, incarnation: o.incarnation };
    if (typeof o.device === 'string') rec.device = o.device;
    return rec;
  } catch {
    return null;
  }
}

/**
 * `forget-peer` writes `__forgotten/<id>` naming the incarnation it retired. Only `<id>` itself
 * may write `__peer/<id>` (admission), so no member can silence another by deleting its record;
 * a forget record only stops others dialling that incarnation and counting it for GC while it
 * is not connected.
 */
export const FORGOTTEN_PREFIX = '__forgotten/';

export function forgottenKey(id: NodeId): string {
  return `${FORGOTTEN_PREFIX}${id}`;
}

function idAfter(prefix: string, key: string): NodeId | null {
  if (!key.startsWith(prefix)) return null;
  const rest = key.slice(prefix.length);
  if (!/^[1-9]\d{0,9}$/.test(rest)) return null;
  const id = Number(rest);
  return isNodeId(id) ? id : null;
}

export function forgottenIdOf(key: string): NodeId | null {
  return idAfter(FORGOTTEN_PREFIX, key);
}

export function encodeForgotten(incarnation: string | null): Uint8Array {
  return Buffer.from(JSON.stringify({ incarnation }));
}

/** The incarnation a forget record retired (null: whichever it was), or undefined if malformed. */
export function decodeForgotten(v: Uint8Array): string | null | undefined {
  if (v.length > 1024) return undefined;
  try {
    const x = JSON.parse(Buffer.from(v).toString('utf8')) as { incarnation?: unknown };
    const inc = x?.incarnation;
    return inc === null || (typeof inc === 'string' && inc.length <= 64) ? inc : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Admission of the sync layer's own keys, by kind: null to admit, a reason to refuse, undefined
 * for a key that is not the sync layer's (the embedder's hook decides those).
 */
export function admitSyncEntry(e: Entry): string | null | undefined {
  if (e.key.startsWith(PEER_PREFIX)) {
    const id = peerIdOf(e.key);
    if (id === null) return 'malformed peer key';
    if (e.meta.node !== id) return `peer record of node ${id} written by node ${e.meta.node}`;
    if (e.value !== null && decodePeerRecord(e.value) === null) return 'malformed peer record';
    return null;
  }
  if (e.key.startsWith(FORGOTTEN_PREFIX)) {
    if (forgottenIdOf(e.key) === null) return 'malformed forget key';
    if (e.value !== null && decodeForgotten(e.value) === undefined)
      return 'malformed forget record';
    return null;
  }
  return undefined;
}

/** Whether `id` in `incarnation` was retired by `forget-peer` (per the state's records). */
export function isForgotten(
  get: (key: string) => Entry | undefined,
  id: NodeId,
  incarnation: string,
): boolean {
  const v = get(forgottenKey(id))?.value;
  if (v === undefined || v === null) return false;
  const inc = decodeForgotten(v);
  return inc === null || inc === incarnation;
}

/** What forgetting a member needs of a node (the running driver's, or one the CLI opened). */
interface ForgettingNode {
  readonly state: { get(key: string): Entry | undefined };
  removePeer(peer: NodeId): Promise<void>;
  put(key: string, value: Uint8Array): Promise<Entry>;
}

/** Retire `peer`: not a member here, and a record that tells every member to drop it too. */
export async function forgetMember(node: ForgettingNode, peer: NodeId): Promise<void> {
  const v = node.state.get(peerKey(peer))?.value;
  const rec = v ? decodePeerRecord(v) : null;
  await node.removePeer(peer);
  await node.put(forgottenKey(peer), encodeForgotten(rec?.incarnation ?? null));
}
