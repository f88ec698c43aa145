import { readdirSync, type Dirent, type Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FSWatcher } from 'chokidar';
import path from 'node:path';
import { logger } from '../log/index.js';
import type { IgnoreRules } from './ignore.js';
import { lstatOrNull } from './localfs.js';
import { absPath, pathProblem } from './paths.js';

const log = logger('watcher');

/** Paths waiting out their debounce at once; past this, one full rescan is asked for instead. */
const MAX_PENDING_HINTS = 100_000;
/** How long a new directory's listing waits for chokidar to watch it (then it lists anyway). */
const WATCH_WAIT_MS = 5000;

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

/** The least time between two reads of one directory by chokidar. */
const READ_GAP_MS = 100;
/** Directories whose last read time is remembered at once (the map is cleared past this). */
const MAX_READ_MARKS = 10_000;
type ReaddirpOptions = Parameters<FSWatcher['_readdirp']>[1];
type ReaddirpStream = ReturnType<FSWatcher['_readdirp']>;
/** The part of a readdirp entry chokidar reads. */
interface DirEntry {
  path: string;
  fullPath: string;
  basename: string;
  stats: Dirent;
  dirent: Dirent;
}
type Filter = (entry: DirEntry) => boolean;

/**
 * chokidar with directory reads that skip files. chokidar re-reads a directory on each of its
 * events, and its reader lstat-ed and filtered every entry: on a node receiving 1000 files that
 * was a quarter of its CPU. We tell chokidar to leave files alone anyway, so a read lists the
 * directory once (readdir with types) and hands chokidar only its subdirectories and symlinks,
 * typed by their Dirent (chokidar stats a path itself before it watches it).
 */
class DirReads extends FSWatcher {
  /** Directory → when its latest read started (a rate limit only; cleared when large). */
  private readonly lastReadMs = new Map<string, number>();

  override _readdirp(root: string, opts?: ReaddirpOptions): ReaddirpStream {
    if (this.closed) return undefined;
    const o = (opts ?? {}) as { fileFilter?: Filter; directoryFilter?: Filter };
    const stream = new Readable({ objectMode: true, read: () => undefined });
    const streams = this._streams as Set<unknown>;
    streams.add(stream);
    stream.once('close', () => streams.delete(stream));
    stream.once('end', () => streams.delete(stream));
    // chokidar reads a directory again as soon as a read ends if events came meanwhile: a
    // directory receiving files was read back to back. At most one read per READ_GAP_MS per
    // directory: a new subdirectory is seen that much later at worst (file events are not).
    const now = Date.now();
    const waitMs = Math.max(0, (this.lastReadMs.get(root) ?? 0) + READ_GAP_MS - now);
    if (this.lastReadMs.size >= MAX_READ_MARKS) this.lastReadMs.clear();
    this.lastReadMs.set(root, now + waitMs);
    const later = (ms: number): Promise<void> => new Promise((r) => void setTimeout(r, ms).unref());
    (waitMs > 0 ? later(waitMs) : Promise.resolve())
      .then(() => readdir(root, { withFileTypes: true }))
      .then(
        (ents) => {
          for (const d of ents) {
            const dir = d.isDirectory();
            if (!dir && !d.isSymbolicLink()) continue;
            const e = {
              path: d.name,
              fullPath: path.join(root, d.name),
              basename: d.name,
              stats: d,
              dirent: d,
            };
            if ((dir ? o.directoryFilter : o.fileFilter)?.(e) ?? true) stream.push(e);
          }
          stream.push(null);
        },
        (e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') stream.emit('error', e);
          stream.push(null);
        },
      );
    return stream as unknown as ReaddirpStream;
  }
}

/**
 * The watcher is a hint, never the truth: each event only says "look at this path soon"; the
 * scanner stats (and hashes) it. Events are debounced per path. Lost events are expected; the
 * slow rescan catches them. Started before the start scan so nothing falls in the gap.
 *
 * chokidar keeps one watch per directory (files are "ignored" by it, so it never opens a watch
 * per file or stats a file per event); its raw events name the entry that changed, and those
 * are the hints.
 */
export class Watcher {
  private w: FSWatcher | null = null;
  /** Directories chokidar watches now, relative to the root ('' for the root). */
  private readonly dirs = new Set<string>();
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
  async start(): Promise<void> {
    const w = new DirReads({
      ignoreInitial: true,
      followSymlinks: false,
      atomic: false, // its editor-file rules and delayed unlinks: the scanner decides
      ignorePermissionErrors: true,
      ignored: (abs, st) => this.skips(abs, st),
    });
    w.add(this.root);
    this.w = w;
    w.on('raw', (event, name, details) => this.onRaw(event, name, details));
    w.on('addDir', (abs) => this.onDir(abs, true));
    w.on('unlinkDir', (abs) => this.onDir(abs, false));
    w.on('error', (e) => this.onError(e as NodeJS.ErrnoException));
    await new Promise<void>((resolve) => w.once('ready', resolve));
    // Directories found by the initial scan come without events (ignoreInitial): list them.
    for (const [dir, names] of Object.entries(w.getWatched())) {
      const rel = this.relOf(dir);
      if (rel === null) continue;
      this.dirs.add(rel);
      for (const n of names) {
        const child = rel === '' ? n : `${rel}/${n}`;
        if (lstatOrNull(absPath(this.root, child))?.isDirectory()) this.dirs.add(child);
      }
    }
  }

  /** Watch directories not watched yet (after the ignore rules changed, or a lost event). */
  async refresh(): Promise<void> {
    await this.walk('', { watchNew: true, hintAll: false });
  }

  /** Directories watched now (tests, status). */
  get watchedDirs(): number {
    return this.dirs.size;
  }

  /**
   * What chokidar leaves alone: files (a hint names them, see onRaw), our own work dir, bad
   * names and ignored paths. Without stats (chokidar asks first by name), only by name.
   */
  private skips(abs: string, st?: Pick<Stats, 'isFile' | 'isDirectory'>): boolean {
    if (st?.isFile()) return true;
    const rel = this.relOf(abs);
    if (rel === null || rel === '') return false; // the root's parent, or the root itself
    return pathProblem(rel) !== null || this.ignore.ignores(rel, st?.isDirectory() ?? false);
  }

  /** `abs` relative to the root with `/` separators; null outside it. */
  private relOf(abs: string): string | null {
    const rel = path.relative(this.root, abs);
    if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
    return rel.split(path.sep).join('/');
  }

  /**
   * Walk the tree under `rel`: hand each directory not watched yet to chokidar (`watchNew`)
   * and hint every entry found (`hintAll`).
   */
  private async walk(rel: string, o: { watchNew: boolean; hintAll: boolean }): Promise<void> {
    if (this.closed) return;
    let ents;
    try {
      ents = readdirSync(path.join(this.root, rel), { withFileTypes: true });
    } catch {
      return; // gone again: its parent's event says so
    }
    // One directory per turn of the event loop: a large tree never stalls the sockets.
    await new Promise((r) => setImmediate(r));
    for (const d of ents) {
      const child = rel === '' ? d.name : `${rel}/${d.name}`;
      if (pathProblem(child) !== null || this.ignore.ignores(child, d.isDirectory())) continue;
      if (o.hintAll) this.hint(child);
      if (!d.isDirectory()) continue;
      if (o.watchNew && !this.dirs.has(child) && !this.limited && !this.closed) {
        this.dirs.add(child);
        this.w?.add(path.join(this.root, child));
      }
      await this.walk(child, o);
    }
  }

  /** A directory appeared (its contents may have landed before its watch) or went away. */
  private onDir(abs: string, added: boolean): void {
    const rel = this.relOf(abs);
    if (rel === null || rel === '' || this.closed) return;
    if (!added) {
      const prefix = `${rel}/`;
      for (const d of this.dirs) if (d === rel || d.startsWith(prefix)) this.dirs.delete(d);
      return;
    }
    this.dirs.add(rel);
    this.hint(rel);
    void this.hintOnceWatched(abs, rel);
  }

  /**
   * Hint what a new directory holds, once chokidar watches it: chokidar reads a new directory
   * and then watches it, so what landed in between raises no event. Listing it after the
   * watch exists leaves no gap. Subdirectories get their own addDir.
   */
  private async hintOnceWatched(abs: string, rel: string): Promise<void> {
    const deadline = Date.now() + WATCH_WAIT_MS;
    while (!this.closed && this.w !== null && !this.w._closers.has(abs)) {
      if (Date.now() > deadline || lstatOrNull(abs)?.isDirectory() !== true) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    if (this.closed) return;
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch {
      return;
    }
    for (const n of names) this.hint(`${rel}/${n}`);
  }

  private onError(e: NodeJS.ErrnoException): void {
    if (e.code === 'ENOSPC' || e.code === 'EMFILE') {
      if (!this.limited) {
        log.error(
          `file watching is limited (${e.code}); falling back to periodic rescans. Raise the limit: sysctl fs.inotify.max_user_watches=524288`,
        );
      }
      this.limited = true;
    } else {
      log.warn('watch error', { error: e.message });
    }
  }

  /** One inotify event on a watched directory, naming the entry (or not). */
  private onRaw(event: string, name: unknown, details: unknown): void {
    if (this.closed) return;
    const watched = (details as { watchedPath?: unknown } | null)?.watchedPath;
    if (typeof watched !== 'string') return;
    const dir = this.relOf(watched);
    if (dir === null) return;
    if (typeof name !== 'string' || name === '') {
      // The kernel did not say which entry: look at all of them.
      void this.walk(dir, { watchNew: false, hintAll: true });
      return;
    }
    const rel = dir === '' ? name : `${dir}/${name}`;
    if (pathProblem(rel) !== null) return;
    if (event === 'rename') {
      // Created, deleted or moved. A directory's own watch is chokidar's (addDir, unlinkDir).
      const st = lstatOrNull(absPath(this.root, rel));
      const dir = st?.isDirectory() ?? false;
      if (this.ignore.ignores(rel, dir)) return;
      // A new directory: what is in it already is hinted now, not once chokidar has read its
      // parent and watched it (hintOnceWatched covers what lands in between).
      if (dir && !this.dirs.has(rel)) void this.walk(rel, { watchNew: false, hintAll: true });
      if (st !== null && !dir && this.opts.isIndexed(rel, st)) return;
    } else if (this.ignore.ignores(rel, false)) {
      return;
    }
    this.hint(rel);
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

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.firstAtMs.clear();
    this.dirs.clear();
    await this.w?.close();
  }
}
