import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { logger } from '../log/index.js';
import type { IgnoreRules } from './ignore.js';
import { pathProblem } from './paths.js';

const log = logger('watcher');

/**
 * chokidar as a hint, never the truth: each event only says "look at this path soon"; the
 * scanner stats (and hashes) it. Events are debounced per path. Lost events are expected; the
 * slow rescan catches them. Started before the start scan so nothing falls in the gap.
 */
export class Watcher {
  private w: FSWatcher | null = null;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private warned = false;

  constructor(
    private readonly root: string,
    private readonly ignore: IgnoreRules,
    private readonly onPath: (rel: string) => void,
    private readonly debounceMs = 30,
  ) {}

  async start(): Promise<void> {
    const w = watch(this.root, {
      ignoreInitial: true,
      followSymlinks: false,
      persistent: true,
      // Called once without stats: never ignore a path only because stats is missing.
      ignored: (abs, stats) => {
        const rel = path.relative(this.root, abs).split(path.sep).join('/');
        if (rel === '' || rel.startsWith('..')) return false;
        return this.ignore.ignores(rel, stats?.isDirectory() ?? false);
      },
    });
    w.on('all', (_event, abs) => this.hint(abs));
    w.on('error', (e) => this.onError(e as NodeJS.ErrnoException));
    this.w = w;
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  private hint(abs: string): void {
    const rel = path.relative(this.root, abs).split(path.sep).join('/');
    if (rel === '' || rel.startsWith('..') || pathProblem(rel) !== null) return;
    const t = this.timers.get(rel);
    if (t) clearTimeout(t);
    this.timers.set(
      rel,
      setTimeout(() => {
        this.timers.delete(rel);
        this.onPath(rel);
      }, this.debounceMs),
    );
  }

  private onError(e: NodeJS.ErrnoException): void {
    if ((e.code === 'ENOSPC' || e.code === 'EMFILE') && !this.warned) {
      this.warned = true;
      log.error(
        `file watching is limited (${e.code}); falling back to periodic rescans. Raise the limit: sysctl fs.inotify.max_user_watches=524288`,
      );
      return;
    }
    log.warn('watcher error', { error: e.message });
  }

  async close(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.w?.close();
  }
}
