/**
 * transport — the WebSocket implementation of sync's Transport, over TLS 1.3 with a
 * certificate per data dir (device.ts): the hello and admission in the HTTP upgrade (the
 * secret's proof bound to the TLS channel, pinned device IDs, loopback demo mode:
 * admission.ts), limits on connections not yet admitted (listener.ts), msgpack framing with a
 * size bound and per-type validation, duplicate-connection resolution, reconnects, heartbeats
 * and backpressure; a large block's bytes in a raw frame of their own after a block-head, and a
 * young-generation GC per 8 MiB of frames (scavenger.ts). The same port answers /status and
 * /metrics (plain HTTP from this machine only).
 *
 * Owns: sockets and frames. Must not touch: protocol decisions (sync's), the store or the tree.
 */
export { WsTransport } from './ws-transport.js';
export { TransportConfigError, splitPeerAddress, type WsTransportOptions } from './options.js';
export { type HttpAccess, type HttpHandler } from './http-gate.js';
export { PROTOCOL_VERSION, isLoopback, httpProof, channelKey, REASON_HEADER } from './handshake.js';
export {
  loadOrCreateDevice,
  deviceIdOf,
  parseDeviceId,
  DeviceError,
  type Device,
  type DeviceId,
} from './device.js';
