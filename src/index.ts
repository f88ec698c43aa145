/**
 * WaveKV / filesync public API. Embedders use `WaveNode`; the core types describe entries and
 * their order.
 */
export * from './core/index.js';
export * from './node/index.js';
export {
  setLogLevel,
  setLogSink,
  logger,
  type LogLevel,
  type LogRecord,
  type Logger,
} from './log/index.js';
export * from './sync/index.js';
export * from './replica/index.js';
export {
  WsTransport,
  TransportConfigError,
  PROTOCOL_VERSION,
  type WsTransportOptions,
} from './transport/index.js';
