import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createRequire } from 'node:module';
import type { ClientRequest } from 'node:http';
import type { RawData } from 'ws';
import { Codec } from '../codec/index.js';
import type { NodeId } from '../core/index.js';
import { LogLimiter, logger } from '../log/index.js';
import {
  parseMessage,
  ProtocolError,
  type PeerLink,
  type BlockResponse,
  type SyncMessage,
  type Transport,
  type TransportHandler,
} from '../sync/index.js';
import { Admission } from './admission.js';
import { deviceIdOf, parseDeviceId, type Device, type DeviceId } from './device.js';
import {
  channelKey,
  helloHeaders,
  httpProof,
  isLoopback,
  macMatches,
  parseControl,
  parseHello,
  PROTOCOL_VERSION,
  REASON_HEADER,
  type ControlFrame,
  type Hello,
} from './handshake.js';
import { Listener } from './listener.js';
import { scavenger } from './scavenger.js';

const log = logger('transport');
// Values are decoded as views of the frame; parseMessage copies them out compactly.
// Required, not imported: through ws's ES-module wrapper node scans each of its CommonJS files
// for their exports, a loop hot enough that TurboFan compiles it at every start (20 ms), and
// that compile's zone memory stayed in malloc's heap of 1 node in 2: idle RSS +3 MiB.
const { WebSocket, WebSocketServer } = createRequire(import.meta.url)('ws') as typeof import('ws');
type WebSocket = import('ws').WebSocket;
type WebSocketServer = import('ws').WebSocketServer;

const packr = new Codec({ useRecords: false, mapsAsObjects: true });
/** Blocks at least this large are written to the socket as they are (see sendBlock). */
const UNCOPIED_BLOCK_MIN_BYTES = 64 * 1024;

/** What a plain HTTP route may show its caller. */
export interface HttpAccess {
  /** The caller proved the cluster secret (bearer over loopback, or a channel-bound proof). */
  proven: boolean;
  tls: boolean;
}

/** Every option of the WebSocket transport. Units are in the names. */
export interface WsTransportOptions {
  node: NodeId;
  incarnation: string;
  /** This node's key and certificate (see device.ts). */
  device: Device;
  /** Address to bind; a non-loopback one needs `secret`, `trust` or `insecure`. */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** host:port peers should dial to reach us; defaults to host:boundPort. */
  advertise?: string | null;
  /** Cluster secret: each side proves it over the TLS channel before anything else. */
  secret?: string | null;
  /** Device IDs admitted without the secret. */
  trust?: DeviceId[];
  /** Admit any device on a non-loopback address (links stay encrypted, not authenticated). */
  insecure?: boolean;
  /** Largest frame accepted (ws maxPayload), once a peer is admitted. */
  maxFrameBytes?: number;
  /** Entries per sync message accepted from a peer. */
  maxEntriesPerMessage?: number;
  /** A connection not admitted in this long is closed. */
  handshakeTimeoutMs?: number;
  /** Connections not yet admitted, in all and per source address. */
  maxPendingConns?: number;
  maxPendingConnsPerAddr?: number;
  /** Ping every this often; a peer silent for two intervals is dropped. */
  heartbeatIntervalMs?: number;
  /** Reconnect backoff: first delay and cap (jittered, doubling). */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** A link refuses sends while this much is queued on its socket (backpressure). */
  maxBufferedBytes?: number;
  /** Handler for plain HTTP requests (/status, /metrics); return false for 404. */
  http?: (req: IncomingMessage, res: ServerResponse, access: HttpAccess) => boolean;
}

export class TransportConfigError extends Error {}

/** One WebSocket, from open through the handshake to a registered link. */
interface Conn {
  ws: WebSocket;
  dialer: Dialer | null;
  /** Where the other side is: the address dialled, or the socket's remote address. */
  addr: string;
  /** The peer's hello, once it was admitted. */
  hello: Hello | null;
  ready: boolean;
  /** We decided to close: nothing more from it is decoded. */
  closing: boolean;
  alive: boolean;
  timer: NodeJS.Timeout;
  bytesIn: number;
  bytesOut: number;
  /** Announced by a block-head: the next frame is this answer's raw bytes. */
  rawNext: { rid: number; bytes: number } | null;
}

interface Dialer {
  /** host:port */
  address: string;
  /** The device a pinned address (`ID@host:port`) must present. */
  expected: DeviceId | null;
  attempt: number;
  timer: NodeJS.Timeout | null;
  conn: Conn | null;
  stopped: boolean;
  /** Learned from the hello of the first connection. */
  peer: NodeId | null;
}

/** `ID@host:port` or `host:port`. */
export function splitPeerAddress(s: string): { address: string; device: DeviceId | null } {
  const at = s.lastIndexOf('@');
  if (at < 0) return { address: s, device: null };
  const device = parseDeviceId(s.slice(0, at));
  if (device === null) throw new TransportConfigError(`${s}: not a device ID before the @`);
  return { address: s.slice(at + 1), device };
}

/**
 * WebSocket transport over TLS 1.3 with both sides' certificates: one socket per peer pair (on
 * a duplicate, the one dialled by the lower id stays), hello and admission in the HTTP upgrade
 * (admission.ts), binary msgpack frames validated per type, reconnect with backoff and jitter,
 * heartbeats, backpressure. The same port answers /status and /metrics through `http`.
 */
export class WsTransport implements Transport {
  private readonly wss: WebSocketServer;
  private readonly admission: Admission;
  private readonly links = new Map<NodeId, Conn>();
  private readonly conns = new Set<Conn>();
  private readonly dialers = new Map<string, Dialer>();
  /** Our hello headers for an upgrade being accepted (ws asks for them by request). */
  private readonly answers = new WeakMap<IncomingMessage, Record<string, string>>();
  private handler: TransportHandler | null = null;
  private readonly connLog = new LogLimiter();
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  private listener!: Listener;
  private readonly o: Required<Omit<WsTransportOptions, 'http' | 'advertise' | 'secret'>> & {
    secret: string | null;
    advertise: string | null;
  };
  readonly counters = {
    bytesIn: 0,
    bytesOut: 0,
    framesIn: 0,
    framesOut: 0,
    badFrames: 0,
    authFailures: 0,
    /** Connections this node opened to peers (every redial counts). */
    dials: 0,
  };

  private constructor(opts: WsTransportOptions) {
    this.o = {
      node: opts.node,
      incarnation: opts.incarnation,
      device: opts.device,
      host: opts.host,
      port: opts.port,
      advertise: opts.advertise ?? null,
      secret: opts.secret ?? null,
      trust: opts.trust ?? [],
      insecure: opts.insecure ?? false,
      maxFrameBytes: opts.maxFrameBytes ?? 32 * 1024 * 1024,
      maxEntriesPerMessage: opts.maxEntriesPerMessage ?? 10_000,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5000,
      maxPendingConns: opts.maxPendingConns ?? 64,
      maxPendingConnsPerAddr: opts.maxPendingConnsPerAddr ?? 16,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 5000,
      reconnectBaseMs: opts.reconnectBaseMs ?? 200,
      reconnectMaxMs: opts.reconnectMaxMs ?? 10_000,
      maxBufferedBytes: opts.maxBufferedBytes ?? 64 * 1024 * 1024,
    };
    this.admission = new Admission({
      node: opts.node,
      device: opts.device.id,
      secret: this.o.secret,
      pinned: this.o.trust,
      insecure: this.o.insecure,
      localLoopback: isLoopback(opts.host),
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
        onRequest: (req, res, tls) => t.serveHttp(opts.http, req, res, tls),
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

  /** Plain HTTP routes: never from a browser page, the secret proven when there is one. */
  private serveHttp(
    http: WsTransportOptions['http'],
    req: IncomingMessage,
    res: ServerResponse,
    tls: boolean,
  ): void {
    const deny = (code: number, why: string): void =>
      void res
        .writeHead(code, { 'content-type': 'text/plain', connection: 'close' })
        .end(`${why}\n`);
    if (!this.hostAllowed(req.headers.host)) return deny(403, 'unknown Host (DNS rebinding?)');
    if (req.headers.origin !== undefined) return deny(403, 'browser origins are refused');
    const proven = this.o.secret !== null && this.proven(req, tls);
    if (this.o.secret !== null && !proven) return deny(401, 'unauthorized');
    try {
      if (http?.(req, res, { proven, tls })) return;
    } catch (e) {
      log.warn('http handler failed', { url: req.url, error: String(e) });
      if (!res.headersSent) res.writeHead(500).end('internal error\n');
      return;
    }
    deny(404, 'not found');
  }

  /** An IP literal, localhost or our advertised name: a rebound DNS name is someone else's. */
  private hostAllowed(host: string | undefined): boolean {
    if (host === undefined) return false;
    const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const ours = (this.o.advertise ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    return isIP(name) !== 0 || name === 'localhost' || name === ours;
  }

  /** The secret as a bearer (only over loopback plain HTTP) or proven over this TLS channel. */
  private proven(req: IncomingMessage, tls: boolean): boolean {
    const auth = req.headers.authorization ?? '';
    const secret = this.o.secret!;
    if (!tls) return macMatches(Buffer.from(`Bearer ${secret}`), Buffer.from(auth));
    const m = /^Filesync-Proof ([0-9a-f]{64})$/.exec(auth);
    if (m === null) return false;
    const want = Buffer.from(httpProof(secret, channelKey(req.socket as TLSSocket)));
    return macMatches(want, Buffer.from(m[1]!));
  }

  start(handler: TransportHandler): void {
    this.handler = handler;
    this.heartbeat = setInterval(() => this.beat(), this.o.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Keep a link to `host:port`, or to `ID@host:port` (then only that device is accepted). */
  dial(target: string): void {
    if (this.closed) return;
    let address: string;
    let device: DeviceId | null;
    try {
      ({ address, device } = splitPeerAddress(target));
    } catch (e) {
      return log.warn('not dialling a malformed address', { target, error: (e as Error).message });
    }
    if (address === this.o.advertise) return;
    const have = this.dialers.get(address);
    if (have !== undefined) {
      have.expected ??= device;
      return;
    }
    if (device !== null) this.admission.pin(device);
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

  hangUp(peer: NodeId): void {
    for (const [addr, d] of this.dialers) {
      if (d.peer === peer) {
        d.stopped = true;
        if (d.timer) clearTimeout(d.timer);
        this.dialers.delete(addr);
      }
    }
    const c = this.links.get(peer);
    if (c) this.shut(c, 4000, 'hung up');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const d of this.dialers.values()) {
      d.stopped = true;
      if (d.timer) clearTimeout(d.timer);
    }
    this.dialers.clear();
    for (const c of this.conns) this.shut(c, 1001, 'shutting down');
    await new Promise<void>((r) => this.wss.close(() => r()));
    await this.listener.close();
  }

  private connect(d: Dialer): void {
    if (d.stopped || this.closed) return;
    d.timer = null;
    // A link to this peer already up (through its own dial): stay quiet until it drops.
    if (d.peer !== null && this.links.has(d.peer)) return;
    const ws = new WebSocket(`wss://${d.address}/sync`, {
      key: this.o.device.keyPem,
      cert: this.o.device.certPem,
      // Certificates are self-signed: the device ID and the secret's proof authenticate.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      maxPayload: this.o.maxFrameBytes,
      handshakeTimeout: this.o.handshakeTimeoutMs,
      // Called inside the constructor, before `conn` exists; the hello goes out later.
      finishRequest: (req: ClientRequest) => this.sendHello(req, () => conn),
    });
    this.counters.dials++;
    const conn: Conn = this.adopt(ws, d, d.address);
    d.conn = conn;
    ws.on('upgrade', (res) => this.onAnswer(conn, res));
    ws.on('unexpected-response', (req, res) => {
      const why = res.headers[REASON_HEADER];
      this.warnOnce(
        conn,
        `${conn.addr} refused the connection`,
        typeof why === 'string' ? why : `HTTP ${res.statusCode}`,
      );
      req.destroy();
    });
  }

  /** Once TLS is up: our hello and proof in the upgrade request (they need the channel's key). */
  private sendHello(req: ClientRequest, connOf: () => Conn): void {
    req.once('socket', (s) =>
      s.once('secureConnect', () => {
        const conn = connOf();
        const tls = s as TLSSocket;
        const raw = tls.getPeerCertificate().raw;
        if (raw === undefined) return void req.destroy(new Error('the peer sent no certificate'));
        const theirs = deviceIdOf(raw);
        const expected = conn.dialer?.expected ?? null;
        if (expected !== null && theirs !== expected) {
          this.refused(conn, `device ${theirs} is not the pinned ${expected}`);
          return void req.destroy(new Error('wrong device'));
        }
        const ekm = channelKey(tls);
        for (const [k, v] of Object.entries(this.ourHello(ekm, 'dialler', theirs)))
          req.setHeader(k, v);
        req.end();
      }),
    );
  }

  private ourHello(
    ekm: Buffer,
    role: 'dialler' | 'listener',
    theirs: DeviceId,
  ): Record<string, string> {
    return helloHeaders({
      node: this.o.node,
      incarnation: this.o.incarnation,
      advertise: this.o.advertise,
      protocol: PROTOCOL_VERSION,
      secret: this.o.secret !== null,
      proof: this.admission.proofFor(ekm, role, theirs),
    });
  }

  /** The listener's 101 answer: admit it, or close before a single frame is read. */
  private onAnswer(conn: Conn, res: IncomingMessage): void {
    const tls = res.socket as TLSSocket;
    let hello: Hello;
    try {
      hello = parseHello(res.headers);
    } catch (e) {
      return this.refused(conn, (e as Error).message);
    }
    const why = this.compatible(hello, conn.dialer);
    if (why !== null) return this.refused(conn, why);
    const d = this.admission.decide({
      hello,
      device: deviceIdOf(tls.getPeerCertificate().raw),
      ekm: channelKey(tls),
      role: 'listener',
      remoteLoopback: isLoopback(tls.remoteAddress),
      expected: conn.dialer?.expected ?? null,
    });
    if (!d.ok) return this.refused(conn, d.reason);
    conn.hello = hello;
    if (conn.dialer) conn.dialer.peer = hello.node;
  }

  private refused(conn: Conn, reason: string): void {
    if (reason === 'wrong cluster secret') this.counters.authFailures++;
    conn.closing = true;
    this.warnOnce(conn, 'refusing peer', reason);
    conn.ws.terminate();
  }

  /** Why this hello cannot be a peer of ours, or null; `theirs`: phrased for the peer's log. */
  private compatible(h: Hello, dialer: Dialer | null, theirs = false): string | null {
    if (h.protocol !== PROTOCOL_VERSION)
      return `protocol ${h.protocol} is not supported (this node speaks ${PROTOCOL_VERSION}): run the same filesync version on every node`;
    if (h.node === this.o.node) {
      if (dialer) dialer.stopped = true;
      return 'connected to self';
    }
    if (h.secret === (this.o.secret !== null)) return null;
    const hasIt = h.secret !== theirs ? 'the peer' : 'this node';
    const lacks = hasIt === 'the peer' ? 'this node' : 'the peer';
    return `${hasIt} requires a cluster secret and ${lacks} has none: give every node the same --secret (or FILESYNC_SECRET)`;
  }

  /** A dialler's upgrade request: its hello in the headers, admitted before the 101. */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, tls: boolean): void {
    const addr = `${(socket as TLSSocket).remoteAddress}:${(socket as TLSSocket).remotePort}`;
    const refuse = (code: number, reason: string, log = true): void => {
      if (code !== 409 && log) this.warnOnceAddr(addr, 'refusing peer', reason);
      const text = reason.replace(/[^\x20-\x7e]/g, '?');
      socket.end(
        `HTTP/1.1 ${code} Refused\r\n${REASON_HEADER}: ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    };
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
    const why = this.compatible(hello, null, true);
    if (why !== null) {
      if (why !== 'connected to self')
        this.warnOnceAddr(addr, 'refusing peer', this.compatible(hello, null)!);
      return refuse(why === 'connected to self' ? 409 : 403, why, false);
    }
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
    if (!d.ok) {
      if (d.reason === 'wrong cluster secret') this.counters.authFailures++;
      return refuse(403, d.reason);
    }
    this.listener.admitted(socket);
    this.answers.set(req, this.ourHello(ekm, 'listener', device));
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = this.adopt(ws, null, addr);
      conn.hello = hello;
      this.ready(conn);
    });
  }

  private redial(d: Dialer): void {
    if (d.stopped || this.closed || d.timer !== null) return;
    const base = Math.min(
      this.o.reconnectMaxMs,
      this.o.reconnectBaseMs * 2 ** Math.min(d.attempt, 16),
    );
    const delayMs = Math.round(base * (0.5 + Math.random() / 2));
    d.attempt++;
    d.timer = setTimeout(() => this.connect(d), delayMs);
    d.timer.unref();
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
      if (conn.dialer !== null && conn.hello === null)
        this.warnOnce(conn, `cannot reach ${conn.addr}; trying again`, e.message);
      else log.debug('socket error', { peer: conn.hello?.node, error: e.message });
    });
    ws.on('close', (code, reason) => this.onClose(conn, code, reason.toString()));
    return conn;
  }

  private sendRaw(conn: Conn, frame: ControlFrame | SyncMessage): boolean {
    if (conn.ws.readyState !== WebSocket.OPEN) return false;
    if (frame.t === 'block-res') return this.sendBlock(conn, frame);
    this.sendBytes(conn, packr.pack(frame, payloadBytes(frame)));
    return true;
  }

  /**
   * A large block goes out as a block-head and then its bytes in a frame of their own, as they
   * are: never copied into an encode buffer (`ws` writes an unmasked frame's data as given,
   * and copies before it masks). On this VM each fresh MiB of encode buffer cost more than the
   * copy itself: 0.17 CPU-s per 256 MiB served. One message in two fragments would do the same
   * on the wire, but `ws` joins fragments with a copy of its own at the receiver. The lender
   * gets `sent` once the socket took the bytes.
   */
  private sendBlock(conn: Conn, frame: BlockResponse): boolean {
    const { rid, data, sent } = frame;
    if (data === null || data.length < UNCOPIED_BLOCK_MIN_BYTES) {
      this.sendBytes(conn, packr.pack({ t: 'block-res', rid, data }, payloadBytes(frame)));
      sent?.();
      return true;
    }
    this.sendBytes(conn, packr.pack({ t: 'block-head', rid, bytes: data.length }));
    this.sendBytes(conn, data, () => sent?.());
    return true;
  }

  /** One binary frame; `done` once the socket took it (or gave up). */
  private sendBytes(conn: Conn, bytes: Uint8Array, done?: () => void): void {
    this.counters.bytesOut += bytes.length;
    conn.bytesOut += bytes.length;
    this.counters.framesOut++;
    scavenger.note(bytes.length);
    conn.ws.send(bytes, { binary: true }, done);
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
    const buf = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data);
    this.counters.bytesIn += buf.length;
    conn.bytesIn += buf.length;
    this.counters.framesIn++;
    scavenger.note(buf.length);
    if (conn.closing || !conn.ready) return;
    if (conn.rawNext !== null) return this.onRawBlock(conn, conn.rawNext, buf, isBinary);
    let x: unknown;
    let control: ControlFrame | null;
    try {
      if (!isBinary) throw new ProtocolError('text frame');
      x = packr.unpack(buf);
      control = parseControl(x);
    } catch (e) {
      this.counters.badFrames++;
      this.shut(conn, 4002, `bad frame: ${(e as Error).message}`);
      return;
    }
    if (control?.t === 'bye') {
      this.warnOnce(conn, 'peer is closing the connection', control.reason);
      return;
    }
    if (control?.t === 'block-head') {
      conn.rawNext = { rid: control.rid, bytes: control.bytes };
      return;
    }
    let msg: SyncMessage;
    try {
      msg = parseMessage(x, this.o.maxEntriesPerMessage);
    } catch (e) {
      this.counters.badFrames++;
      this.shut(conn, 4002, (e as Error).message);
      return;
    }
    this.handler?.message(conn.hello!.node, msg);
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
      for (const d of this.dialers.values()) if (d.peer === peer && d.conn !== conn) this.redial(d);
    }
    const d = conn.dialer;
    if (d !== null && d.conn === conn) {
      d.conn = null;
      this.redial(d);
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

/**
 * About how many bytes a frame's block data takes (0 for frames without any), so the codec
 * packs a 1 MiB block into one buffer of its size instead of growing one 4× and copying.
 */
function payloadBytes(frame: ControlFrame | SyncMessage): number {
  if (frame.t === 'block-res') return frame.data === null ? 0 : frame.data.length + 256;
  if (frame.t === 'blocks-res') {
    let n = 256;
    for (const d of frame.data) n += (d?.length ?? 0) + 8;
    return n;
  }
  return 0;
}
