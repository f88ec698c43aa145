/**
 * transport — the WebSocket implementation of sync's Transport: connections, hello with
 * protocol version, the HMAC proof of the cluster secret, msgpack framing with a size bound
 * and per-type validation, duplicate-connection resolution, reconnects, heartbeats and
 * backpressure; a large block's bytes in a raw frame of their own after a block-head, and a
 * young-generation GC per 8 MiB of frames (scavenger.ts). Its HTTP server also answers /status
 * and /metrics.
 *
 * Owns: sockets and frames. Must not touch: protocol decisions (sync's), the store or the tree.
 */
export { WsTransport, TransportConfigError, type WsTransportOptions } from './ws-transport.js';
export { PROTOCOL_VERSION, isLoopback } from './handshake.js';
