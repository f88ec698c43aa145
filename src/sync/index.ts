/**
 * sync — the replication protocol driver: sync rounds with paged responses and truthful acks,
 * push relay, confirmations of what a peer durably holds (so deltas leave it out), bootstrap, membership and discovery through `__peer/<id>`, digest repair, and
 * tombstone GC scheduling.
 *
 * Owns: every protocol decision (what to send, when acks may move, when to repair).
 * Must not touch: sockets, real timers or the clock directly (a Transport and a Scheduler are
 * injected, so the deterministic simulator runs this code unchanged), or the disk.
 */
export * from './messages.js';
export { parseMessage, ProtocolError } from './parse.js';
export * from './types.js';
export * from './peer-record.js';
export { SyncDriver } from './driver.js';
export { RequestError } from './requests.js';
export { PushRelay } from './push.js';
export { keptBytes, type BlockServer, type ServedBlock } from './blocks.js';
