/**
 * node — the embeddable WaveKV library: core + store + change events. `WaveNode.open` gives a
 * node whose reads are synchronous and whose writes resolve once durable.
 *
 * Owns: the node's identity and seq reservation, stamping local writes, turning merges into
 * logged ops, change events.
 * Must not touch: sockets, peers' scheduling, the filesync tree. The sync layer drives it.
 */
export { WaveNode, NodeOpenError } from './node.js';
export {
  SEQ_LEASE_STEP,
  DEFAULT_WAL_MAX_BYTES,
  type NodeOptions,
  type ChangeEvent,
  type MergeResult,
} from './options.js';
