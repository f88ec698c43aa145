/**
 * Owns: what the two ends of a new link say and check in the HTTP upgrade: our hello and proof,
 * the peer's hello, protocol and secret agreement, and the admission decision.
 * Must not touch: sockets beyond reading their certificate and keying material (the transport
 * sends, refuses and closes).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { NodeId } from '../core/index.js';
import type { Admission } from './admission.js';
import { deviceIdOf, type DeviceId } from './device.js';
import {
  channelKey,
  helloHeaders,
  isLoopback,
  parseHello,
  PROTOCOL_VERSION,
  type Hello,
} from './handshake.js';

export interface HandshakeOptions {
  node: NodeId;
  incarnation: string;
  secret: string | null;
  advertise: () => string | null;
}

/** A refusal: the HTTP status, the reason sent to the peer, and the one we log (null: none). */
export interface Refusal {
  code: number;
  reason: string;
  logged: string | null;
}

export type Accepted = { hello: Hello; device: DeviceId; ekm: Buffer };

export const SELF = 'connected to self';

export class LinkHandshake {
  constructor(
    private readonly o: HandshakeOptions,
    private readonly admission: Admission,
  ) {}

  ourHello(ekm: Buffer, role: 'dialler' | 'listener', theirs: DeviceId): Record<string, string> {
    return helloHeaders({
      node: this.o.node,
      incarnation: this.o.incarnation,
      advertise: this.o.advertise(),
      protocol: PROTOCOL_VERSION,
      secret: this.o.secret !== null,
      proof: this.admission.proofFor(ekm, role, theirs),
    });
  }

  /** Why this hello cannot be a peer of ours, or null; `theirs`: phrased for the peer's log. */
  compatible(h: Hello, theirs = false): string | null {
    if (h.protocol !== PROTOCOL_VERSION)
      return `protocol ${h.protocol} is not supported (this node speaks ${PROTOCOL_VERSION}): run the same filesync version on every node`;
    if (h.node === this.o.node) return SELF;
    if (h.secret === (this.o.secret !== null)) return null;
    const hasIt = h.secret !== theirs ? 'the peer' : 'this node';
    const lacks = hasIt === 'the peer' ? 'this node' : 'the peer';
    return `${hasIt} requires a cluster secret and ${lacks} has none: give every node the same --secret (or FILESYNC_SECRET)`;
  }

  /** The dialler, TLS up: our hello headers, or why we will not go on. */
  dialHello(
    tls: TLSSocket,
    expected: DeviceId | null,
  ): { headers: Record<string, string> } | { reason: string } {
    const raw = tls.getPeerCertificate().raw;
    if (raw === undefined) return { reason: 'the peer sent no certificate' };
    const theirs = deviceIdOf(raw);
    if (expected !== null && theirs !== expected)
      return { reason: `device ${theirs} is not the pinned ${expected}` };
    return { headers: this.ourHello(channelKey(tls), 'dialler', theirs) };
  }

  /** The dialler, reading the listener's 101: its hello, admitted, or why not. */
  checkAnswer(
    res: IncomingMessage,
    expected: DeviceId | null,
  ): { hello: Hello } | { reason: string } {
    const tls = res.socket as TLSSocket;
    let hello: Hello;
    try {
      hello = parseHello(res.headers);
    } catch (e) {
      return { reason: (e as Error).message };
    }
    const why = this.compatible(hello);
    if (why !== null) return { reason: why };
    const d = this.admission.decide({
      hello,
      device: deviceIdOf(tls.getPeerCertificate().raw),
      ekm: channelKey(tls),
      role: 'listener',
      remoteLoopback: isLoopback(tls.remoteAddress),
      expected,
    });
    return d.ok ? { hello } : { reason: d.reason };
  }

  /** The listener, reading a dialler's upgrade request: admitted, or refused and why. */
  checkUpgrade(req: IncomingMessage, socket: Duplex, tls: boolean): Accepted | Refusal {
    const refuse = (code: number, reason: string, logged: string | null = reason): Refusal => ({
      code,
      reason,
      logged,
    });
    if (!tls)
      return refuse(426, 'links need TLS: the peer runs an older filesync (protocol 4 or earlier)');
    if ((req.url ?? '').split('?')[0] !== '/sync') return refuse(404, 'not found');
    if (req.headers.origin !== undefined) return refuse(403, 'browser origins are refused');
    let hello: Hello;
    try {
      hello = parseHello(req.headers);
    } catch (e) {
      return refuse(400, (e as Error).message);
    }
    const why = this.compatible(hello, true);
    if (why === SELF) return refuse(409, why, null);
    if (why !== null) return refuse(403, why, this.compatible(hello));
    const s = socket as TLSSocket;
    const raw = s.getPeerCertificate().raw;
    if (raw === undefined) return refuse(403, 'no client certificate');
    const device = deviceIdOf(raw);
    const ekm = channelKey(s);
    const d = this.admission.decide({
      hello,
      device,
      ekm,
      role: 'dialler',
      remoteLoopback: isLoopback(s.remoteAddress),
      expected: null,
    });
    return d.ok ? { hello, device, ekm } : refuse(403, d.reason);
  }
}
