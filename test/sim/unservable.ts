import type { WaveNode } from '../../src/node/index.js';
import { hashOf } from './hashes.js';
import type { MemDisk } from '../../src/filesync/mem-disk.js';
import { FILE_PREFIX, pathOf } from '../../src/filesync/paths.js';
import { decodeRecord } from '../../src/filesync/record.js';

/**
 * Paths whose winning version has content no machine holds where a peer can serve it (its
 * tree; at quiescence no download is under way): its author's power cut took the file before
 * any peer fetched it, or a user overwrote the last copy (a trash, or a download of another
 * version left in tmp, may hold it, and no one serves those: seed 646). No peer can ever
 * serve it, so the mirrors park it for ever (until a user writes the path again); the checks
 * then ask that this content was never durable anywhere or was replaced by a user (else a
 * mirror lost it).
 */
export function unservable(kv: WaveNode, disks: MemDisk[]): Map<string, string> {
  const held = new Set<string>();
  for (const disk of disks)
    for (const abs of disk.paths('/'))
      if (!abs.includes('/.filesync/') && disk.lstat(abs).isFile())
        held.add(hashOf(disk.readFile(abs)));
  const out = new Map<string, string>();
  for (const e of kv.entries(FILE_PREFIX)) {
    const r = e.value === null ? null : decodeRecord(e.value);
    const rel = pathOf(e.key);
    if (rel !== null && r?.type === 'file' && r.size > 0 && !held.has(r.hash)) out.set(rel, r.hash);
  }
  return out;
}
