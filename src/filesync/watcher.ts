import { readdirSync, watch, type FSWatcher, type Stats } from 'node:fs';
import path from 'node:path';
import { logger } from '../log/index.js';
import type { IgnoreRules } from './ignore.js';
import { lstatOrNull } from './localfs.js';
import { absPath, pathProblem } from './paths.js';

const log = logger('watcher');

/** Paths waiting out their debounce at once; past this, one full rescan is asked for instead. */
const MAX_PENDING_HINTS = 100_000;

export interface WatcherOptions {
  /** Called when hints were dropped (too many pending): the caller rescans everything. */
  onOverflow?: () => void;
  /** How long a path's events are gathered before its one hint (default 30 ms). */
  debounceMs?: number;
  /**
   * A path whose events keep coming is hinted at least this often anyway: a file appended to
   * every few ms would otherwise reach peers only once it stops growing.
   */
  maxWaitMs?: number;
  /**
   * Whether a path's fresh lstat is exactly what the disk index holds (type, size, mtime,
   * inode, mode: the scanner's own test). Such a rename event is the echo of our own write
   * landing, and a scanner check would only stat it again and find nothing: one lstat and a
   * path lock saved per received file. Any later change raises its own event.
   */
  isIndexed?: (rel: string, st: Stats) => boolean;
}

interface WatchedDir {
  w: FSWatcher;
  /** The directory's inode: a dir renamed over it is a different one and is watched afresh. */
  ino: number;
}

/**
 * The watcher is a hint, never the truth: each event only says "look at this path soon"; the
 * scanner stats (and hashes) it. Events are debounced per path. Lost events are expected; the
 * slow rescan catches them. Started before the start scan so nothing falls in the gap.
 *
 * One inotify watch per directory (node:fs `watch`), not chokidar (DESIGN §0 names chokidar 5).
 * Why: chokidar answers every event by re-reading the whole directory and lstat-ing each
 * entry in it (readdirp with alwaysStat), so a directory receiving N files costs O(N²) stats.
 * Profiled on workload a (1000 files into 10 dirs), that was 35 % of a receiving node's CPU,
 * its largest single cost. We need nothing chokidar adds on Linux: inotify already names the
 * entry that changed, and every path is stat'ed by the scanner anyway.
 */
export class Watcher {
  private readonly dirs = new Map<string, WatchedDir>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** When each path's pending hint was first asked for. */
  private readonly firstAtMs = new Map<string, number>();
  private limited = false;
  private closed = false;

  private readonly opts: Required<WatcherOptions>;

  constructor(
    private readonly root: string,
    private readonly ignore: IgnoreRules,
    private readonly onPath: (rel: string) => void,
    opts: WatcherOptions = {},
  ) {
    this.opts = {
      onOverflow: () => undefined,
      debounceMs: 30,
      maxWaitMs: 1000,
      isIndexed: () => false,
      ...opts,
    };
  }

  /** Watch the root and every directory under it that the ignore rules let through. */
  start(): Promise<void> {
    return this.refresh();
  }

  /** Watch directories not watched yet (after the ignore rules changed, or a lost event). */
  async refresh(): Promise<void> {
    await this.add('', false);
  }

  /** Directories watched now (tests, status). */
  get watchedDirs(): number {
    return this.dirs.size;
  }

  /**
   * Watch `rel` if it is not watched yet, then its subdirectories. With `hintAll`, every entry
   * found is hinted too: a directory that just appeared may have been filled before its watch.
   */
  private async add(rel: string, hintAll: boolean): Promise<void> {
    if (this.closed) return;
    const abs = path.join(this.root, rel);
    const st = lstatOrNull(abs);
    if (st === null || !st.isDirectory()) return;
    const cur = this.dirs.get(rel);
    if (cur !== undefined && cur.ino !== st.ino) this.drop(rel);
    if (!this.dirs.has(rel) && !this.limited) this.watchDir(rel, abs, st.ino);
    let ents;
    try {
      ents = readdirSync(abs, { withFileTypes: true });
    } catch {
      return; // gone again: its parent's event says so
    }
    // One directory per turn of the event loop: a large tree never stalls the sockets.
    await new Promise((r) => setImmediate(r));
    for (const d of ents) {
      const child = rel === '' ? d.name : `${rel}/${d.name}`;
      if (pathProblem(child) !== null || this.ignore.ignores(child, d.isDirectory())) continue;
      if (hintAll) this.hint(child);
      if (d.isDirectory()) await this.add(child, hintAll);
    }
  }

  private watchDir(rel: string, abs: string, ino: number): void {
    try {
      const w = watch(abs, { persistent: true }, (event, name) =>
        this.onEvent(rel, event, name === null ? null : String(name)),
      );
      w.on('error', (e: Error) => {
        log.debug('directory watch ended', { dir: rel, error: e.message });
        this.drop(rel);
      });
      this.dirs.set(rel, { w, ino });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EMFILE') {
        if (!this.limited) {
          log.error(
            `file watching is limited (${code}); falling back to periodic rescans. Raise the limit: sysctl fs.inotify.max_user_watches=524288`,
          );
        }
        this.limited = true;
      } else if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        log.warn('cannot watch directory', { dir: rel, error: String(e) });
      }
    }
  }

  private onEvent(dir: string, event: string, name: string | null): void {
    if (this.closed) return;
    if (name === null) {
      void this.add(dir, true); // the kernel did not say which entry: look at all of them
      return;
    }
    const rel = dir === '' ? name : `${dir}/${name}`;
    if (pathProblem(rel) !== null) return;
    if (event === 'rename') {
      // Created, deleted or moved: a directory here needs (or no longer has) its own watch.
      const st = lstatOrNull(absPath(this.root, rel));
      if (st?.isDirectory()) {
        if (this.ignore.ignores(rel, true)) return;
        if (this.dirs.get(rel)?.ino !== st.ino) void this.add(rel, true);
      } else if (this.dirs.has(rel)) {
        this.drop(rel);
      }
      if (this.ignore.ignores(rel, st?.isDirectory() ?? false)) return;
      if (st !== null && this.opts.isIndexed(rel, st)) return;
    } else if (this.ignore.ignores(rel, false)) {
      return;
    }
    this.hint(rel);
  }

  /** Stop watching `rel` and everything under it. */
  private drop(rel: string): void {
    const prefix = rel === '' ? '' : `${rel}/`;
    for (const [d, { w }] of this.dirs) {
      if (d === rel || d.startsWith(prefix)) {
        w.close();
        this.dirs.delete(d);
      }
    }
  }

  private hint(rel: string): void {
    const t = this.timers.get(rel);
    const now = Date.now();
    if (t) {
      // Waited long enough already: let the pending hint fire instead of pushing it back.
      if (now - (this.firstAtMs.get(rel) ?? now) >= this.opts.maxWaitMs) return;
      clearTimeout(t);
    } else if (this.timers.size >= MAX_PENDING_HINTS) {
      this.opts.onOverflow();
      return;
    } else this.firstAtMs.set(rel, now);
    this.timers.set(
      rel,
      setTimeout(() => {
        this.timers.delete(rel);
        this.firstAtMs.delete(rel);
        this.onPath(rel);
      }, this.opts.debounceMs),
    );
  }

  close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.firstAtMs.clear();
    for (const { w } of this.dirs.values()) w.close();
    this.dirs.clear();
    return Promise.resolve();
  }
}
