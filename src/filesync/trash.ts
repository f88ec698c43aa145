import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { logger } from '../log/index.js';

const log = logger('filesync');

/**
 * Files removed or replaced by remote changes are moved here (under the data dir) instead of
 * deleted: a move or rename can reuse their blocks, and a mistake can be undone. Entries older
 * than `keepMs` are swept.
 */
export class Trash {
  private seq = 0;

  constructor(
    readonly dir: string,
    private readonly keepMs: number,
  ) {}

  /** Move `abs` (a file or symlink) into the trash; returns its new path. */
  async put(abs: string, rel: string): Promise<string> {
    const slot = path.join(this.dir, `${Date.now()}-${process.pid}-${this.seq++}`);
    const dest = path.join(slot, rel);
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(abs, dest);
    return dest;
  }

  async sweep(nowMs = Date.now()): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      const born = Number(n.split('-')[0]);
      if (!Number.isFinite(born) || nowMs - born < this.keepMs) continue;
      try {
        const p = path.join(this.dir, n);
        if ((await stat(p)).isDirectory()) await rm(p, { recursive: true, force: true });
      } catch (e) {
        log.debug('trash sweep', { error: String(e) });
      }
    }
  }
}
