/**
 * tui — the Ink terminal UI (header, peers with seq progress bars, per-origin bars, transfers,
 * events) and the source that models a running node for it. Off a TTY, or with --no-tui, the
 * CLI prints one log line per event instead.
 *
 * Owns: what the screen shows and how often (≤ 10 redraws/s). Must not touch: the node's
 * state (it only reads), sockets, the disk.
 */
export { App, Bar, type AppProps } from './App.js';
export { NodeSource } from './node-source.js';
export * from './model.js';
