import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
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
import {
  authMac,
  isLoopback,
  macMatches,
  newNonce,
  parseControl,
  PROTOCOL_VERSION,
  type ControlFrame,
  type Hello,
} from './handshake.js';
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

/** Every option of the WebSocket transport. Units are in the names. */
export interface WsTransportOptions {
  node: NodeId;
  incarnation: string;
  /** Address to bind; a non-loopback one needs `secret` or `insecure`. */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** host:port peers should dial to reach us; defaults to host:boundPort. */
  advertise?: string | null;
  /** Cluster secret: both sides prove it by HMAC before anything else is accepted. */
  secret?: string | null;
  /** Allow binding a non-loopback address without a secret. */
  insecure?: boolean;
  /** Largest frame accepted (ws maxPayload). */
  maxFrameBytes?: number;
  /** Entries per sync message accepted from a peer. */
  maxEntriesPerMessage?: number;
  /** A connection not through hello (and auth) in this long is closed. */
  handshakeTimeoutMs?: number;
  /** Ping every this often; a peer silent for two intervals is dropped. */
  heartbeatIntervalMs?: number;
  /** Reconnect backoff: first delay and cap (jittered, doubling). */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** A link refuses sends while this much is queued on its socket (backpressure). */
  maxBufferedBytes?: number;
  /** Handler for plain HTTP requests (/status, /metrics); return false for 404. */
  http?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export class TransportConfigError extends Error {}

/** One WebSocket, from open through hello and auth to a registered link. */
interface Conn {
  ws: WebSocket;
  dialer: Dialer | null;
  /** Where the other side is: the address dialled, or the socket's remote address. */
  addr: string;
  nonce: Buffer;
  hello: Hello | null;
  ready: boolean;
  alive: boolean;
  timer: NodeJS.Timeout;
  bytesIn: number;
  bytesOut: number;
  /** Announced by a block-head: the next frame is this answer's raw bytes. */
  rawNext: { rid: number; bytes: number } | null;
}

interface Dialer {
  address: string;
  attempt: number;
  timer: NodeJS.Timeout | null;
  conn: Conn | null;
  stopped: boolean;
  /** Learned from the hello of the first connection. */
  peer: NodeId | null;
}

/**
 * WebSocket transport: one socket per peer pair (on a duplicate, the one dialled by the lower
 * id stays), binary msgpack frames validated per type, hello with protocol version, optional
 * HMAC challenge–response, reconnect with backoff and jitter, heartbeats, backpressure. The
 * same HTTP server answers /status and /metrics through `http`.
 */
export class WsTransport implements Transport {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly links = new Map<NodeId, Conn>();
  private readonly conns = new Set<Conn>();
  private readonly dialers = new Map<string, Dialer>();
  private handler: TransportHandler | null = null;
  private readonly connLog = new LogLimiter();
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
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

  private constructor(opts: WsTransportOptions, server: Server) {
    this.o = {
      node: opts.node,
      incarnation: opts.incarnation,
      host: opts.host,
      port: opts.port,
      advertise: opts.advertise ?? null,
      secret: opts.secret ?? null,
      insecure: opts.insecure ?? false,
      maxFrameBytes: opts.maxFrameBytes ?? 32 * 1024 * 1024,
      maxEntriesPerMessage: opts.maxEntriesPerMessage ?? 10_000,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5000,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 5000,
      reconnectBaseMs: opts.reconnectBaseMs ?? 200,
      reconnectMaxMs: opts.reconnectMaxMs ?? 10_000,
      maxBufferedBytes: opts.maxBufferedBytes ?? 64 * 1024 * 1024,
    };
    this.server = server;
    this.wss = new WebSocketServer({ server, path: '/sync', maxPayload: this.o.maxFrameBytes });
    this.wss.on('connection', (ws, req) =>
      this.adopt(ws, null, `${req.socket.remoteAddress}:${req.socket.remotePort}`),
    );
    // A listen error is the caller's to report (listen rejects with it).
    this.wss.on('error', (e) => log.debug('websocket server error', { error: e.message }));
  }

  /** Bind the HTTP + WebSocket server; refuses an exposed address without a secret. */
  static async listen(opts: WsTransportOptions): Promise<WsTransport> {
    if (!isLoopback(opts.host) && !opts.secret && !opts.insecure) {
      throw new TransportConfigError(
        `refusing to listen on ${opts.host} without a cluster secret: set --secret (or FILESYNC_SECRET), or pass --insecure`,
      );
    }
    const server = createServer();
    const t = new WsTransport(opts, server);
    server.on('request', (req, res) => t.serveHttp(opts.http, req, res));
    await new Promise<void>((resolve, reject) => {
      const refused = (e: NodeJS.ErrnoException): void =>
        reject(
          e.code === 'EADDRINUSE'
            ? new TransportConfigError(
                `port ${opts.port} on ${opts.host} is in use (another node?): choose another --port`,
              )
            : e,
        );
      server.once('error', refused);
      server.listen(opts.port, opts.host, () => {
        server.off('error', refused);
        resolve();
      });
    });
    t.o.advertise ??= `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${t.port}`;
    return t;
  }

  /** Bytes exchanged with `peer` on its current connection. */
  peerBytes(peer: NodeId): { bytesIn: number; bytesOut: number } | null {
    const c = this.links.get(peer);
    return c ? { bytesIn: c.bytesIn, bytesOut: c.bytesOut } : null;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get advertise(): string {
    return this.o.advertise!;
  }

  private serveHttp(
    http: WsTransportOptions['http'],
    req: IncomingMessage,
    res: ServerResponse,
  ): void {
    if (this.o.secret !== null && req.headers.authorization !== `Bearer ${this.o.secret}`) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized\n');
      return;
    }
    try {
      if (http?.(req, res)) return;
    } catch (e) {
      log.warn('http handler failed', { url: req.url, error: String(e) });
      if (!res.headersSent) res.writeHead(500).end('internal error\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  start(handler: TransportHandler): void {
    this.handler = handler;
    this.heartbeat = setInterval(() => this.beat(), this.o.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  dial(address: string): void {
    if (this.closed || address === this.o.advertise || this.dialers.has(address)) return;
    const d: Dialer = { address, attempt: 0, timer: null, conn: null, stopped: false, peer: null };
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
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private connect(d: Dialer): void {
    if (d.stopped || this.closed) return;
    d.timer = null;
    // A link to this peer already up (through its own dial): stay quiet until it drops.
    if (d.peer !== null && this.links.has(d.peer)) return;
    const ws = new WebSocket(`ws://${d.address}/sync`, {
      maxPayload: this.o.maxFrameBytes,
      handshakeTimeout: this.o.handshakeTimeoutMs,
    });
    this.counters.dials++;
    d.conn = this.adopt(ws, d, d.address);
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
      nonce: newNonce(),
      hello: null,
      ready: false,
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
    const sendHello = (): void =>
      void this.sendRaw(conn, {
        t: 'hello',
        node: this.o.node,
        incarnation: this.o.incarnation,
        advertise: this.o.advertise,
        protocol: PROTOCOL_VERSION,
        nonce: conn.nonce,
        secret: this.o.secret !== null,
      });
    if (ws.readyState === WebSocket.OPEN) sendHello();
    else ws.once('open', sendHello);
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

  /** Close with a reason both sides log: ours here, theirs from the close frame. */
  private shut(conn: Conn, code: number, reason: string): void {
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
    if (!conn.ready) {
      this.handshake(conn, control);
      return;
    }
    if (control?.t === 'block-head') {
      conn.rawNext = { rid: control.rid, bytes: control.bytes };
      return;
    }
    if (control !== null) {
      this.shut(conn, 4002, `unexpected ${control.t} after handshake`);
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

  private handshake(conn: Conn, f: ControlFrame | null): void {
    if (f === null) {
      this.shut(conn, 4003, 'message before handshake');
      return;
    }
    if (f.t === 'hello') {
      if (conn.hello !== null) return this.shut(conn, 4002, 'second hello');
      if (f.protocol !== PROTOCOL_VERSION) {
        return this.shut(
          conn,
          4004,
          `protocol ${f.protocol} is not supported (this node speaks ${PROTOCOL_VERSION})`,
        );
      }
      if (f.node === this.o.node) {
        if (conn.dialer) conn.dialer.stopped = true;
        return this.shut(conn, 4009, 'connected to self');
      }
      if (f.secret !== (this.o.secret !== null)) {
        return this.shut(
          conn,
          4005,
          f.secret
            ? 'the peer requires a cluster secret: give this node the same --secret (or FILESYNC_SECRET)'
            : 'this node requires a cluster secret: give the peer the same --secret (or FILESYNC_SECRET)',
        );
      }
      conn.hello = f;
      if (conn.dialer) conn.dialer.peer = f.node;
      if (this.o.secret === null) return this.ready(conn);
      this.sendRaw(conn, { t: 'auth', mac: authMac(this.o.secret, f.nonce, this.o.node) });
      return;
    }
    if (f.t === 'auth') {
      if (conn.hello === null || this.o.secret === null)
        return this.shut(conn, 4002, 'auth before hello');
      if (!macMatches(authMac(this.o.secret, conn.nonce, conn.hello.node), f.mac)) {
        this.counters.authFailures++;
        return this.shut(conn, 4006, 'wrong cluster secret');
      }
      return this.ready(conn);
    }
    if (f.t === 'block-head') this.shut(conn, 4003, 'message before handshake');
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
