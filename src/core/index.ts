/**
 * core — WaveKV's pure state machine: entries and their last-write-wins order, the state
 * (data map, origin index, acks, members, nextSeq), the ops that change it, deltas, the
 * incremental digest, and limits with admission.
 *
 * Owns: every rule about which version of a key wins and what a node may claim to cover.
 * Must not touch: I/O, timers, the clock (time is an argument), randomness, or any other layer
 * of ours. Everything here is deterministic so the simulator can replay any history.
 */
export * from './types.js';
export * from './order.js';
export * from './limits.js';
export { Digest, entryHash, BUCKETS } from './digest.js';
export { keyBucket } from './hash.js';
export {
  State,
  type DeltaCursor,
  type DeltaOptions,
  type DeltaPage,
  type MergePlan,
} from './state.js';
