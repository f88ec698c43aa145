import { mkdirSync, renameSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
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

  /** Move `abs` (a file or symlink) into the trash; returns its new path. Inline: localfs.ts. */
  put(abs: string, rel: string): Promise<string> {
    try {
      const slot = path.join(this.dir, `${Date.now()}-${process.pid}-${this.seq++}`);
      const dest = path.join(slot, rel);
      mkdirSync(path.dirname(dest), { recursive: true });
      renameSync(abs, dest);
      return Promise.resolve(dest);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
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
