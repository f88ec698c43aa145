import type { Disk } from './disk.js';

interface DirState {
  /** The fsync in flight; it does not cover renames made after it started. */
  running: Promise<void> | null;
  /** The next fsync, shared by everyone who asked while `running` was in flight. */
  next: Promise<void> | null;
}

/**
 * Directory fsyncs as group commits, like the WAL's: every rename made into a directory while
 * one of its fsyncs is in flight shares the single next fsync. Many small files arriving
 * together cost a few directory syncs, not one each.
 */
export class DirSyncer {
  private readonly dirs = new Map<string, DirState>();

  constructor(private readonly disk: Disk) {}

  sync(dir: string): Promise<void> {
    let s = this.dirs.get(dir);
    if (s === undefined) this.dirs.set(dir, (s = { running: null, next: null }));
    if (s.next !== null) return s.next;
    const state = s;
    const start = (): Promise<void> => {
      state.next = null;
      const run = this.disk.fsyncDir(dir).finally(() => {
        state.running = null;
        if (state.next === null && this.dirs.get(dir) === state) this.dirs.delete(dir);
      });
      state.running = run;
      return run;
    };
    if (state.running === null) return start();
    state.next = state.running.then(start, start);
    return state.next;
  }
}
