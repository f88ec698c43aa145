/**
 * store — WaveKV's durability: the write-ahead log with group commit, atomic snapshots,
 * recovery, and the `node` identity file.
 *
 * Owns: every byte under the data dir that WaveKV writes (`node`, `wal/`, `snapshot`,
 * `snapshot.bak`), and the rule that an op is visible only once durable.
 * Must not touch: the network, the filesync tree, or sync decisions. node:fs is used only here.
 */
export { Store, type StoreOptions, type RecoveryReport } from './store.js';
export {
  readIdentity,
  writeIdentity,
  newIdentity,
  IdentityError,
  type Identity,
} from './identity.js';
export { fsyncDir, fsyncFd, isErrno } from './fsutil.js';
export {
  nodeStoreDisk,
  writeFileAtomic,
  type StoreDisk,
  type StoreFile,
  type WriteChunk,
} from './disk.js';
export { MemStoreDisk } from './mem-disk.js';
export type { FsyncPolicy } from './wal.js';
export type { SnapshotStep } from './snapshot.js';
