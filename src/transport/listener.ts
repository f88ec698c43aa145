/**
 * Owns: the listening port: TLS for peers and remote callers, plain HTTP for local callers
 * only (told apart by the first byte), and the limits on connections not yet admitted.
 * Must not touch: what a request or an upgrade means (the transport's handlers decide).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { LogLimiter, logger } from '../log/index.js';
import type { Device } from './device.js';
import { isLoopback, REASON_HEADER } from './handshake.js';

const log = logger('transport');
/** The first byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;

export interface ListenerOptions {
  host: string;
  port: number;
  device: Device;
  /** A connection not admitted (or done with its request) in this long is closed. */
  handshakeTimeoutMs: number;
  /** Connections not yet admitted, in all and from one address. */
  maxPendingConns: number;
  maxPendingConnsPerAddr: number;
  /** Largest request head accepted from anyone (Node refuses larger before parsing). */
  maxHeaderBytes: number;
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, tls: boolean) => void;
  onRequest: (req: IncomingMessage, res: ServerResponse, tls: boolean) => void;
  /** A connection refused for the limits on pending ones. */
  onRefused: () => void;
}

interface Pending {
  addr: string;
  timer: NodeJS.Timeout;
}

export class Listener {
  private readonly pending = new Map<string, Pending>();
  private readonly perAddr = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private readonly limitLog = new LogLimiter();

  private constructor(
    private readonly o: ListenerOptions,
    private readonly net: Server,
  ) {}

  static async listen(o: ListenerOptions): Promise<Listener> {
    const limits = {
      maxHeaderSize: o.maxHeaderBytes,
      headersTimeout: o.handshakeTimeoutMs,
      requestTimeout: o.handshakeTimeoutMs,
    };
    const tls = createHttpsServer({
      ...limits,
      key: o.device.keyPem,
      cert: o.device.certPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      handshakeTimeout: o.handshakeTimeoutMs,
    });
    const plain = createHttpServer(limits);
    const server = createNetServer();
    const l = new Listener(o, server);
    // A whole request read: the connection is an HTTP client's now, its idle time Node's
    // keep-alive timeout (the pending deadline would cut a kept-alive socket mid-request).
    tls.on('request', (req, res) => (l.admitted(req.socket), o.onRequest(req, res, true)));
    tls.on('upgrade', (req, s: Duplex, head: Buffer) => o.onUpgrade(req, s, head, true));
    tls.on('tlsClientError', (e) => log.debug('tls handshake failed', { error: e.message }));
    plain.on('request', (req, res) => (l.admitted(req.socket), o.onRequest(req, res, false)));
    plain.on('upgrade', (req, s: Duplex, head: Buffer) => o.onUpgrade(req, s, head, false));
    server.on('connection', (s) => l.accept(s, tls, plain));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => log.warn('listener error', { error: e.message }));
    return l;
  }

  get port(): number {
    return (this.net.address() as AddressInfo).port;
  }

  /** The socket (or the TLS socket over it) was admitted as a peer: no deadline, not counted. */
  admitted(socket: Duplex): void {
    const s = socket as Socket;
    const key = `${s.remoteAddress}|${s.remotePort}`;
    const p = this.pending.get(key);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.pending.delete(key);
    this.uncount(p.addr);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.net.close(() => r()));
  }

  private accept(s: Socket, tls: Server, plain: Server): void {
    const addr = s.remoteAddress ?? '?';
    const n = this.perAddr.get(addr) ?? 0;
    if (this.pending.size >= this.o.maxPendingConns || n >= this.o.maxPendingConnsPerAddr) {
      this.o.onRefused();
      if (this.limitLog.allow(addr, Date.now()) !== null)
        log.warn('too many connections not yet admitted; refusing more', { addr });
      s.destroy();
      return;
    }
    this.perAddr.set(addr, n + 1);
    const key = `${addr}|${s.remotePort}`;
    const timer = setTimeout(() => s.destroy(), this.o.handshakeTimeoutMs);
    timer.unref();
    this.pending.set(key, { addr, timer });
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => {
      this.sockets.delete(s);
      this.admitted(s);
    });
    s.once('readable', () => {
      const first = s.read(1) as Buffer | null;
      if (first === null) return void s.destroy();
      s.unshift(first);
      if (first[0] === TLS_HANDSHAKE) return void tls.emit('connection', s);
      // Plain HTTP only from this machine: /status and /metrics for local tools and scrapers.
      if (isLoopback(addr)) return void plain.emit('connection', s);
      s.end(
        `HTTP/1.1 403 Forbidden\r\n${REASON_HEADER}: use https\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    });
  }

  private uncount(addr: string): void {
    const n = (this.perAddr.get(addr) ?? 1) - 1;
    if (n <= 0) this.perAddr.delete(addr);
    else this.perAddr.set(addr, n);
  }
}
