import path from 'node:path';
import { writeFileAtomic, type StoreDisk } from '../store/index.js';

/** How the previous run of this mirror ended, as its marker in the data dir tells. */
export type LastStop = 'clean' | 'killed' | 'power-loss';

/** Where Linux names the current boot (a new random id at every boot). */
export const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

/**
 * The `running` marker: written (synced) at start with the machine's boot id, removed once a
 * close has saved the index. Found at the next start, the previous run did not close: killed
 * (the same boot: the index journal is in the page cache, whole) or the machine went down
 * under it (another boot, or no boot id to tell: the journal's tail may be lost, so the index
 * may be behind the disk).
 */
export async function markRunning(
  dataDir: string,
  disk: StoreDisk,
  bootId: string | null,
): Promise<LastStop> {
  const file = path.join(dataDir, 'running');
  let last: LastStop = 'clean';
  try {
    const was = (await disk.readFile(file)).toString().trim();
    last = bootId !== null && was === bootId ? 'killed' : 'power-loss';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') last = 'power-loss'; // unknown: assume the worst
  }
  await writeFileAtomic(file, Buffer.from(`${bootId ?? ''}\n`), 0o666, disk);
  return last;
}

/** The index is saved: the next start may trust it. */
export async function markStopped(dataDir: string, disk: StoreDisk): Promise<void> {
  await disk.remove(path.join(dataDir, 'running'));
}
