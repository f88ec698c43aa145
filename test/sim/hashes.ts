import { sha256 } from '../../src/filesync/hasher.js';

const known = new WeakMap<Buffer, string>();

/**
 * A file's content hash, once per buffer: the checks hash every tree often, and MemDisk never
 * changes a file's bytes in place (a write makes a new buffer).
 */
export function hashOf(data: Buffer): string {
  let h = known.get(data);
  if (h === undefined) known.set(data, (h = sha256(data)));
  return h;
}
