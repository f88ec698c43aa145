import path from 'node:path';
import { logger } from '../log/index.js';
import { lstatOr, type Disk } from './disk.js';

const log = logger('filesync');
/** Bound on the made-directories cache (cleared when full: it only saves mkdirs). */
const MAX_REMEMBERED_DIRS = 10_000;

/**
 * Files removed or replaced by remote changes are moved here (under the data dir) instead of
 * deleted: a move or rename can reuse their blocks, and a mistake can be undone. Entries older
 * than `keepMs` are swept.
 */
export class Trash {
  private seq = 0;
  private slotMinute = 0;
  /** Directories already made in the current slot. */
  private readonly made = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly keepMs: number,
    private readonly disk: Disk,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Move `abs` (a file or symlink) into the trash; returns its new path. One slot directory per
   * minute (mkdirs cost about as much as creating a file here: one per deleted file doubled the
   * cost of `rm -rf`); a name already taken in the slot gets a numeric suffix. Done inline
   * (see localfs.ts).
   */
  put(abs: string, rel: string): Promise<string> {
    try {
      return Promise.resolve(this.putInSlot(abs, rel));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private putInSlot(abs: string, rel: string): string {
    const minute = Math.floor(this.now() / 60_000) * 60_000;
    if (minute !== this.slotMinute) {
      this.slotMinute = minute;
      this.made.clear();
    }
    try {
      const dest = this.into(path.join(this.dir, `${minute}-${process.pid}`), rel);
      this.disk.rename(abs, dest);
      return dest;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && lstatOr(this.disk, abs) === null)
        throw e;
      // The shared slot is in the way (a file where this path needs a dir): a slot of its own.
      this.made.clear();
      const dest = this.into(
        path.join(this.dir, `${this.now()}-${process.pid}-${this.seq++}`),
        rel,
      );
      this.disk.rename(abs, dest);
      return dest;
    }
  }

  /** A free name for `rel` in `slot`, its parent made. */
  private into(slot: string, rel: string): string {
    const dest = path.join(slot, rel);
    const parent = path.dirname(dest);
    if (!this.made.has(parent)) {
      this.disk.mkdir(parent, { recursive: true });
      if (this.made.size >= MAX_REMEMBERED_DIRS) this.made.clear();
      this.made.add(parent);
    }
    let free = dest;
    while (lstatOr(this.disk, free) !== null) free = `${dest}.${this.seq++}`;
    return free;
  }

  async sweep(nowMs = this.now()): Promise<void> {
    let names: string[];
    try {
      names = this.disk.readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      const born = Number(n.split('-')[0]);
      if (!Number.isFinite(born) || nowMs - born < this.keepMs) continue;
      try {
        const p = path.join(this.dir, n);
        if (this.disk.lstat(p).isDirectory()) await this.disk.removeTree(p);
      } catch (e) {
        log.debug('trash sweep', { error: String(e) });
      }
    }
  }
}
