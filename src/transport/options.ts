/**
 * Owns: the transport's options and their defaults, and the shape of a connection and a dialler.
 * Must not touch: sockets.
 */
import type { WebSocket } from 'ws';
import type { NodeId } from '../core/index.js';
import { parseDeviceId, type Device, type DeviceId } from './device.js';
import type { Hello } from './handshake.js';
import type { HttpHandler } from './http-gate.js';

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
  http?: HttpHandler;
}

export class TransportConfigError extends Error {}

/** One WebSocket, from open through the handshake to a registered link. */
export interface Conn {
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

export interface Dialer {
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

export type ResolvedOptions = Required<
  Omit<WsTransportOptions, 'http' | 'advertise' | 'secret'>
> & {
  secret: string | null;
  advertise: string | null;
};

export function withDefaults(opts: WsTransportOptions): ResolvedOptions {
  return {
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
}
