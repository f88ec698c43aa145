import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isNodeId, type NodeId } from '../core/index.js';
import { MAX_BLOCK_BYTES } from '../sync/index.js';
import type { DeviceId } from './device.js';

/** Bumped on any incompatible change of the frames or the sync messages. 5: TLS links. */
export const PROTOCOL_VERSION = 5;

/**
 * What each side says of itself, in the HTTP upgrade (the dialler's request, the answer's 101
 * headers): nothing is decoded from a peer's frames before it is admitted, and Node caps the
 * headers' size before it parses them.
 */
export interface Hello {
  node: NodeId;
  incarnation: string;
  advertise: string | null;
  protocol: number;
  /** Whether this side requires the cluster secret. */
  secret: boolean;
  /** Its proof of the secret over this TLS channel, when it has one. */
  proof: Buffer | null;
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

export type ControlFrame = Bye | BlockHead;

/** Why a peer was refused, in a header of the refusal (the dialler logs it). */
export const REASON_HEADER = 'x-filesync-reason';
const H = {
  node: 'x-filesync-node',
  incarnation: 'x-filesync-incarnation',
  advertise: 'x-filesync-advertise',
  protocol: 'x-filesync-protocol',
  secret: 'x-filesync-secret',
  proof: 'x-filesync-proof',
} as const;

/** The channel's exported keying material: equal at both ends of one TLS session, only there. */
export function channelKey(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(32, 'EXPORTER-filesync-link', Buffer.from('v5'));
}

/**
 * Proof of the cluster secret bound to this TLS channel, both device IDs, the sender's role and
 * id: a proof relayed onto another channel, or reflected back, does not verify.
 */
export function linkProof(
  secret: string,
  ekm: Buffer,
  role: 'dialler' | 'listener',
  from: { node: NodeId; device: DeviceId },
  toDevice: DeviceId,
): Buffer {
  const h = createHmac('sha256', secret);
  h.update(`filesync-link-${PROTOCOL_VERSION}\0${role}\0`);
  h.update(ekm);
  h.update(`\0${from.device}\0${toDevice}\0${from.node}`);
  return h.digest();
}

/** A client's proof of the secret for plain HTTP routes over TLS (`filesync status`). */
export function httpProof(secret: string, ekm: Buffer): string {
  return createHmac('sha256', secret).update('filesync-http\0').update(ekm).digest('hex');
}

export function macMatches(expected: Buffer, got: Uint8Array | null): boolean {
  return got !== null && got.length === expected.length && timingSafeEqual(expected, got);
}

export function helloHeaders(h: Hello): Record<string, string> {
  const out: Record<string, string> = {
    [H.node]: String(h.node),
    [H.incarnation]: h.incarnation,
    [H.protocol]: String(h.protocol),
    [H.secret]: h.secret ? '1' : '0',
  };
  if (h.advertise !== null) out[H.advertise] = h.advertise;
  if (h.proof !== null) out[H.proof] = h.proof.toString('hex');
  return out;
}

/** The hello in a peer's headers; throws with a one-line reason when malformed. */
export function parseHello(headers: IncomingHttpHeaders): Hello {
  const one = (k: string): string | undefined => {
    const v = headers[k];
    return Array.isArray(v) ? undefined : v;
  };
  const protocol = Number(one(H.protocol));
  if (!Number.isSafeInteger(protocol)) throw new Error('no filesync protocol in the handshake');
  const node = Number(one(H.node));
  const incarnation = one(H.incarnation);
  const advertise = one(H.advertise) ?? null;
  const secret = one(H.secret);
  const proof = one(H.proof);
  if (
    !isNodeId(node) ||
    incarnation === undefined ||
    incarnation.length > 64 ||
    (advertise !== null && advertise.length > 300) ||
    (secret !== '0' && secret !== '1') ||
    (proof !== undefined && !/^[0-9a-f]{64}$/.test(proof))
  )
    throw new Error('malformed hello');
  return {
    node,
    incarnation,
    advertise,
    protocol,
    secret: secret === '1',
    proof: proof === undefined ? null : Buffer.from(proof, 'hex'),
  };
}

/** Validate a control frame's shape; null when it is not one. */
export function parseControl(x: unknown): ControlFrame | null {
  if (typeof x !== 'object' || x === null) return null;
  const m = x as Record<string, unknown>;
  switch (m.t) {
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
    case 'hello':
    case 'auth':
      throw new Error(`${m.t} frame: the peer runs an older filesync`);
    default:
      return null;
  }
}

/** Is `host` a loopback address (safe to bind without a secret)? */
export function isLoopback(host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.replace(/^\[|\]$/g, '').replace(/^::ffff:/i, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
