import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { RawData } from 'ws';
import type { NodeId } from '../core/index.js';
import { LogLimiter, logger } from '../log/index.js';
import type { PeerLink, SyncMessage, Transport, TransportHandler } from '../sync/index.js';
import { Admission } from './admission.js';
import { parseDeviceId, type DeviceId } from './device.js';
import { decodeFrame, receivedBytes, sendFrame } from './frames.js';
import { isLoopback, REASON_HEADER, type ControlFrame } from './handshake.js';
import { serveHttp } from './http-gate.js';
import { LinkHandshake, SELF } from './link-handshake.js';
import { dialError, Dialers } from './dialers.js';
import { Listener } from './listener.js';
import {
  TransportConfigError,
  withDefaults,
  type Conn,
  type Dialer,
  type ResolvedOptions,
  type WsTransportOptions,
} from './options.js';

const log = logger('transport');
// Required, not imported: through ws's ES-module wrapper node scans each of its CommonJS files
// for their exports, a loop hot enough that TurboFan compiles it at every start (20 ms), and
// that compile's zone memory stayed in malloc's heap of 1 node in 2: idle RSS +3 MiB.
const { WebSocket, WebSocketServer } = createRequire(import.meta.url)('ws') as typeof import('ws');
type WebSocket = import('ws').WebSocket;
type WebSocketServer = import('ws').WebSocketServer;

/**
 * WebSocket transport over TLS 1.3 with both sides' certificates: one socket per peer pair (on
 * a duplicate, the one dialled by the lower id stays), hello and admission in the HTTP upgrade
 * (admission.ts), binary msgpack frames validated per type, reconnect with backoff and jitter,
 * heartbeats, backpressure. The same port answers /status and /metrics through `http`.
 */
export class WsTransport implements Transport {
  private readonly wss: WebSocketServer;
  private readonly admission: Admission;
  private readonly handshake: LinkHandshake;
  private readonly links = new Map<NodeId, Conn>();
  private readonly conns = new Set<Conn>();
  private readonly dialers: Dialers;
  /** Our hello headers for an upgrade being accepted (ws asks for them by request). */
  private readonly answers = new WeakMap<IncomingMessage, Record<string, string>>();
  private handler: TransportHandler | null = null;
  private readonly connLog = new LogLimiter();
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  private listener!: Listener;
  private readonly o: ResolvedOptions;
  readonly counters = {
    bytesIn: 0,
    bytesOut: 0,
    framesIn: 0,
    framesOut: 0,
    badFrames: 0,
    authFailures: 0,
    /** Connections this node opened to peers (every redial counts). */
    dials: 0,
    /** Connections refused because too many were waiting to be admitted. */
    pendingRefused: 0,
  };

  private constructor(opts: WsTransportOptions) {
    this.o = withDefaults(opts);
    this.admission = new Admission({
      node: opts.node,
      device: opts.device.id,
      secret: this.o.secret,
      pinned: this.o.trust,
      insecure: this.o.insecure,
      localLoopback: isLoopback(opts.host),
    });
    this.handshake = new LinkHandshake(
      {
        node: opts.node,
        incarnation: opts.incarnation,
        secret: this.o.secret,
        advertise: () => this.o.advertise,
      },
      this.admission,
    );
    this.dialers = new Dialers({
      o: this.o,
      handshake: this.handshake,
      admission: this.admission,
      counters: this.counters,
      closed: () => this.closed,
      linked: (peer) => this.links.has(peer),
      adopt: (ws, d) => this.adopt(ws, d, d.address),
      refused: (conn, reason) => this.refused(conn, reason),
      warnOnce: (conn, what, reason) => this.warnOnce(conn, what, reason),
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.o.maxFrameBytes });
    this.wss.on('headers', (headers, req) => {
      for (const [k, v] of Object.entries(this.answers.get(req) ?? {})) headers.push(`${k}: ${v}`);
    });
  }

  /** Bind the port; refuses an exposed address with no way to authenticate peers. */
  static async listen(opts: WsTransportOptions): Promise<WsTransport> {
    if (!isLoopback(opts.host) && !opts.secret && !opts.trust?.length && !opts.insecure) {
      throw new TransportConfigError(
        `refusing to listen on ${opts.host} without a cluster secret or a trusted device: set --secret (or FILESYNC_SECRET) or --trust, or pass --insecure`,
      );
    }
    const t = new WsTransport(opts);
    try {
      t.listener = await Listener.listen({
        host: opts.host,
        port: opts.port,
        device: opts.device,
        handshakeTimeoutMs: t.o.handshakeTimeoutMs,
        maxPendingConns: t.o.maxPendingConns,
        maxPendingConnsPerAddr: t.o.maxPendingConnsPerAddr,
        maxHeaderBytes: 8 * 1024,
        onUpgrade: (req, s, head, tls) => t.onUpgrade(req, s, head, tls),
        onRequest: (req, res, tls) => serveHttp(t.o, opts.http, req, res, tls),
        onRefused: () => t.counters.pendingRefused++,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
        throw new TransportConfigError(
          `port ${opts.port} on ${opts.host} is in use (another node?): choose another --port`,
        );
      throw e;
    }
    t.o.advertise ??= `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${t.port}`;
    return t;
  }

  get device(): DeviceId {
    return this.o.device.id;
  }

  /** A `__peer/<id>` record names the device `<id>` runs on. */
  learn(peer: NodeId, device: string): void {
    const d = parseDeviceId(device);
    if (d !== null) this.admission.learn(peer, d);
  }

  /** Bytes exchanged with `peer` on its current connection. */
  peerBytes(peer: NodeId): { bytesIn: number; bytesOut: number } | null {
    const c = this.links.get(peer);
    return c ? { bytesIn: c.bytesIn, bytesOut: c.bytesOut } : null;
  }

  get port(): number {
    return this.listener.port;
  }

  get advertise(): string {
    return this.o.advertise!;
  }

  start(handler: TransportHandler): void {
    this.handler = handler;
    this.heartbeat = setInterval(() => this.beat(), this.o.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Keep a link to `host:port`, or to `ID@host:port` (then only that device is accepted). */
  dial(target: string): void {
    this.dialers.dial(target);
  }

  hangUp(peer: NodeId): void {
    this.dialers.forget(peer);
    const c = this.links.get(peer);
    if (c) this.shut(c, 4000, 'hung up');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.dialers.stopAll();
    for (const c of this.conns) this.shut(c, 1001, 'shutting down');
    await new Promise<void>((r) => this.wss.close(() => r()));
    await this.listener.close();
  }

  private refused(conn: Conn, reason: string): void {
    if (reason === SELF && conn.dialer) conn.dialer.stopped = true;
    if (reason === 'wrong cluster secret') this.counters.authFailures++;
    conn.closing = true;
    if (reason !== SELF) this.warnOnce(conn, 'refusing peer', reason);
    conn.ws.terminate();
  }

  /** A dialler's upgrade request: its hello in the headers, admitted before the 101. */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, tls: boolean): void {
    const addr = `${(socket as TLSSocket).remoteAddress}:${(socket as TLSSocket).remotePort}`;
    const r = this.handshake.checkUpgrade(req, socket, tls);
    if ('code' in r) {
      if (r.logged !== null) this.warnOnceAddr(addr, 'refusing peer', r.logged);
      if (r.reason === 'wrong cluster secret') this.counters.authFailures++;
      const text = r.reason.replace(/[^\x20-\x7e]/g, '?');
      socket.end(
        `HTTP/1.1 ${r.code} Refused\r\n${REASON_HEADER}: ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
      return;
    }
    this.listener.admitted(socket);
    this.answers.set(req, this.handshake.ourHello(r.ekm, 'listener', r.device));
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = this.adopt(ws, null, addr);
      conn.hello = r.hello;
      this.ready(conn);
    });
  }

  private adopt(ws: WebSocket, dialer: Dialer | null, addr: string): Conn {
    const conn: Conn = {
      ws,
      dialer,
      addr,
      hello: null,
      ready: false,
      closing: false,
      alive: true,
      bytesIn: 0,
      bytesOut: 0,
      rawNext: null,
      timer: setTimeout(
        () => this.shut(conn, 4008, 'handshake timed out'),
        this.o.handshakeTimeoutMs,
      ),
    };
    conn.timer.unref();
    this.conns.add(conn);
    // A dialler's link is admitted in its 'upgrade' (onAnswer), before 'open'.
    if (dialer !== null)
      ws.once('open', () => (conn.hello ? this.ready(conn) : conn.ws.terminate()));
    ws.on('message', (data, isBinary) => this.onFrame(conn, data, isBinary));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', (e) => {
      if (conn.closing) return;
      if (conn.dialer !== null && conn.hello === null)
        this.warnOnce(conn, `cannot reach ${conn.addr}; trying again`, dialError(e));
      else log.debug('socket error', { peer: conn.hello?.node, error: e.message });
    });
    ws.on('close', (code, reason) => this.onClose(conn, code, reason.toString()));
    return conn;
  }

  private sendRaw(conn: Conn, frame: ControlFrame | SyncMessage): boolean {
    return sendFrame(conn.ws, [conn, this.counters], frame);
  }

  /**
   * A connection problem, logged once a minute per address and kind (a node that keeps
   * redialling a wrong peer would otherwise print it at every backoff step, many a minute);
   * the expected close of a duplicate link only at debug level.
   */
  private warnOnce(conn: Conn, what: string, reason: string): void {
    const fields = { addr: conn.addr, peer: conn.hello?.node ?? 'unknown', reason };
    if (reason === 'duplicate connection') return log.debug(what, fields);
    // Keyed by host for a caller (its every attempt comes from a new port), by address dialled.
    const who = conn.dialer !== null ? conn.addr : conn.addr.replace(/:\d+$/, '');
    if (this.connLog.allow(`${who}|${what}|${reason}`, Date.now()) !== null) log.warn(what, fields);
  }

  /** The same, for a caller refused before it became a connection. */
  private warnOnceAddr(addr: string, what: string, reason: string): void {
    const who = addr.replace(/:\d+$/, '');
    if (this.connLog.allow(`${who}|${what}|${reason}`, Date.now()) !== null)
      log.warn(what, { addr, reason });
  }

  /** Close with a reason both sides log: ours here, theirs from the close frame. */
  private shut(conn: Conn, code: number, reason: string): void {
    conn.closing = true;
    if (conn.ws.readyState === WebSocket.OPEN && code >= 4000) {
      this.sendRaw(conn, { t: 'bye', reason });
    }
    if (code >= 4001 && code !== 4009) this.warnOnce(conn, 'closing connection', reason);
    const short = Buffer.from(reason).subarray(0, 120).toString();
    if (conn.ws.readyState === WebSocket.CONNECTING) conn.ws.terminate();
    else conn.ws.close(code, short);
  }

  private onFrame(conn: Conn, data: RawData, isBinary: boolean): void {
    const buf = receivedBytes(data, [conn, this.counters]);
    // Nothing is decoded from a link we decided to close, or before it was admitted.
    if (conn.closing || !conn.ready) return;
    if (conn.rawNext !== null) return this.onRawBlock(conn, conn.rawNext, buf, isBinary);
    let f: ReturnType<typeof decodeFrame>;
    try {
      f = decodeFrame(buf, isBinary, this.o.maxEntriesPerMessage);
    } catch (e) {
      this.counters.badFrames++;
      return this.shut(conn, 4002, (e as Error).message);
    }
    if ('msg' in f) return this.handler?.message(conn.hello!.node, f.msg);
    if (f.control.t === 'bye')
      return this.warnOnce(conn, 'peer is closing the connection', f.control.reason);
    conn.rawNext = { rid: f.control.rid, bytes: f.control.bytes };
  }

  /** The frame a block-head announced: exactly that many raw bytes, the answer's data. */
  private onRawBlock(
    conn: Conn,
    head: { rid: number; bytes: number },
    buf: Buffer,
    isBinary: boolean,
  ): void {
    conn.rawNext = null;
    if (!isBinary || buf.length !== head.bytes) {
      this.counters.badFrames++;
      this.shut(
        conn,
        4002,
        `bad frame: block-head announced ${head.bytes} bytes, got ${buf.length}`,
      );
      return;
    }
    this.handler?.message(conn.hello!.node, { t: 'block-res', rid: head.rid, data: buf });
  }

  private ready(conn: Conn): void {
    clearTimeout(conn.timer);
    const peer = conn.hello!.node;
    const existing = this.links.get(peer);
    if (existing !== undefined && existing !== conn) {
      // Duplicate: both sides keep the connection dialled by the lower id.
      const lower = Math.min(peer, this.o.node);
      const dialledBy = (c: Conn): NodeId => (c.dialer ? this.o.node : peer);
      if (dialledBy(conn) !== lower || dialledBy(existing) === lower) {
        this.shut(conn, 4009, 'duplicate connection');
        return;
      }
      this.links.delete(peer);
      this.shut(existing, 4009, 'duplicate connection');
      this.handler?.linkDown(peer, 'replaced by a duplicate connection');
    }
    conn.ready = true;
    if (conn.dialer) conn.dialer.attempt = 0;
    this.links.set(peer, conn);
    const link: PeerLink = {
      peer,
      incarnation: conn.hello!.incarnation,
      advertise: conn.hello!.advertise,
      send: (m) => conn.ws.bufferedAmount <= this.o.maxBufferedBytes && this.sendRaw(conn, m),
      get bufferedBytes() {
        return conn.ws.bufferedAmount;
      },
    };
    this.handler?.linkUp(link);
  }

  private onClose(conn: Conn, code: number, reason: string): void {
    clearTimeout(conn.timer);
    this.conns.delete(conn);
    const peer = conn.hello?.node;
    // Its reason came in its bye, logged then.
    if (code >= 4001 && reason) log.debug('peer closed the connection', { peer, code, reason });
    if (peer !== undefined && this.links.get(peer) === conn) {
      this.links.delete(peer);
      this.handler?.linkDown(peer, reason || `closed (${code})`);
      // Wake dialers that stood down because this link existed.
      this.dialers.wake(peer, conn);
    }
    const d = conn.dialer;
    if (d !== null && d.conn === conn) {
      d.conn = null;
      this.dialers.redial(d);
    }
  }

  private beat(): void {
    for (const c of this.conns) {
      if (!c.ready) continue;
      if (!c.alive) {
        log.warn('peer stopped answering heartbeats', { peer: c.hello?.node });
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }
}
