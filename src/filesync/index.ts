/**
 * filesync — the directory mirror on top of WaveKV: path rules (enforced through the core's
 * admission hook), FileRecords, the disk index, the scanner and the inotify watcher (local
 * side), the applier with conflict handling, trash and the mass-delete guard (remote side),
 * ignore rules, and block transfer.
 *
 * Owns: every byte it writes under the synced root, `index`, `tmp/` and `trash/` in the data
 * dir. Must not touch: WaveKV's own files, protocol decisions or sockets.
 */
export { FileSync, type FileSyncOptions, type FileEvent } from './engine.js';
export { admitFileEntry, pathProblem, conflictName, keyOf, pathOf, FILE_PREFIX } from './paths.js';
export { encodeRecord, decodeRecord, type FileRecord } from './record.js';
export { hashFile } from './hasher.js';
