import type { ClientRequest } from 'node:http';
import { createRequire } from 'node:module';
import type { TLSSocket } from 'node:tls';
import type { NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import type { Admission } from './admission.js';
import type { DeviceId } from './device.js';
import { REASON_HEADER } from './handshake.js';
import type { LinkHandshake } from './link-handshake.js';
import { splitPeerAddress, type Conn, type Dialer, type ResolvedOptions } from './options.js';

const log = logger('transport');
// Required, not imported: see ws-transport.ts.
const { WebSocket } = createRequire(import.meta.url)('ws') as typeof import('ws');
type WebSocket = import('ws').WebSocket;

/** What dialling needs of the transport. */
export interface DialHost {
  o: ResolvedOptions;
  handshake: LinkHandshake;
  admission: Admission;
  counters: { dials: number };
  closed(): boolean;
  /** Whether a link to `peer` is up now. */
  linked(peer: NodeId): boolean;
  /** Take a new socket in as a connection of `d`'s. */
  adopt(ws: WebSocket, d: Dialer): Conn;
  refused(conn: Conn, reason: string): void;
  warnOnce(conn: Conn, what: string, reason: string): void;
}

/**
 * The links this node keeps dialling: one dialler per address, our hello sent once TLS is up,
 * the answer checked in the upgrade, and redials with backoff and jitter.
 */
export class Dialers {
  private readonly dialers = new Map<string, Dialer>();

  constructor(private readonly host: DialHost) {}

  /** Keep a link to `host:port`, or to `ID@host:port` (then only that device is accepted). */
  dial(target: string): void {
    if (this.host.closed()) return;
    let address: string;
    let device: DeviceId | null;
    try {
      ({ address, device } = splitPeerAddress(target));
    } catch (e) {
      return log.warn('not dialling a malformed address', { target, error: (e as Error).message });
    }
    if (address === this.host.o.advertise) return;
    const have = this.dialers.get(address);
    if (have !== undefined) {
      have.expected ??= device;
      return;
    }
    if (device !== null) this.host.admission.pin(device);
    const d: Dialer = {
      address,
      expected: device,
      attempt: 0,
      timer: null,
      conn: null,
      stopped: false,
      peer: null,
    };
    this.dialers.set(address, d);
    this.connect(d);
  }

  /** Stop dialling `peer` wherever it was dialled. */
  forget(peer: NodeId): void {
    for (const [addr, d] of this.dialers) {
      if (d.peer === peer) {
        d.stopped = true;
        if (d.timer) clearTimeout(d.timer);
        this.dialers.delete(addr);
      }
    }
  }

  stopAll(): void {
    for (const d of this.dialers.values()) {
      d.stopped = true;
      if (d.timer) clearTimeout(d.timer);
    }
    this.dialers.clear();
  }

  /** `peer`'s link (`conn`) went down: diallers that stood down because it existed try again. */
  wake(peer: NodeId, conn: Conn): void {
    for (const d of this.dialers.values()) if (d.peer === peer && d.conn !== conn) this.redial(d);
  }

  redial(d: Dialer): void {
    const { o } = this.host;
    if (d.stopped || this.host.closed() || d.timer !== null) return;
    const base = Math.min(o.reconnectMaxMs, o.reconnectBaseMs * 2 ** Math.min(d.attempt, 16));
    const delayMs = Math.round(base * (0.5 + Math.random() / 2));
    d.attempt++;
    d.timer = setTimeout(() => this.connect(d), delayMs);
    d.timer.unref();
  }

  private connect(d: Dialer): void {
    const { o, handshake } = this.host;
    if (d.stopped || this.host.closed()) return;
    d.timer = null;
    // A link to this peer already up (through its own dial): stay quiet until it drops.
    if (d.peer !== null && this.host.linked(d.peer)) return;
    const ws = new WebSocket(`wss://${d.address}/sync`, {
      key: o.device.keyPem,
      cert: o.device.certPem,
      // Certificates are self-signed: the device ID and the secret's proof authenticate.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      maxPayload: o.maxFrameBytes,
      handshakeTimeout: o.handshakeTimeoutMs,
      // Called inside the constructor, before `conn` exists; the hello goes out later.
      finishRequest: (req: ClientRequest) => this.sendHello(req, () => conn),
    });
    this.host.counters.dials++;
    const conn: Conn = this.host.adopt(ws, d);
    d.conn = conn;
    ws.on('upgrade', (res) => {
      const r = handshake.checkAnswer(res, d.expected);
      if ('reason' in r) return this.host.refused(conn, r.reason);
      conn.hello = r.hello;
      d.peer = r.hello.node;
    });
    ws.on('unexpected-response', (req, res) => {
      const why = res.headers[REASON_HEADER];
      const reason = typeof why === 'string' ? why : `HTTP ${res.statusCode}`;
      this.host.warnOnce(conn, 'the peer refused the connection', reason);
      req.destroy();
    });
  }

  /** Once TLS is up: our hello and proof in the upgrade request (they need the channel's key). */
  private sendHello(req: ClientRequest, connOf: () => Conn): void {
    req.once('socket', (s) =>
      s.once('secureConnect', () => {
        const conn = connOf();
        const r = this.host.handshake.dialHello(s as TLSSocket, conn.dialer?.expected ?? null);
        if ('reason' in r) {
          this.host.refused(conn, r.reason);
          return void req.destroy(new Error(r.reason));
        }
        for (const [k, v] of Object.entries(r.headers)) req.setHeader(k, v);
        req.end();
      }),
    );
  }
}

/** A dial's failure in words: a node of before TLS links answers our TLS hello in plain HTTP. */
export function dialError(e: Error): string {
  if (/wrong version number|packet length too long/.test(e.message))
    return 'it does not speak TLS: it runs an older filesync (protocol 4 or earlier)';
  return e.message;
}
