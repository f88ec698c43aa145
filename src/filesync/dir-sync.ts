import { fsyncDir } from '../store/fsutil.js';

/**
 * Directory fsyncs shared across files: files renamed into one directory while a sync of it
 * is pending share that one fsync. Many small files arriving together cost one directory
 * sync, not one each.
 */
export class DirSyncer {
  private readonly pending = new Map<string, Promise<void>>();

  sync(dir: string): Promise<void> {
    let p = this.pending.get(dir);
    if (p === undefined) {
      p = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.pending.delete(dir);
        return fsyncDir(dir);
      });
      this.pending.set(dir, p);
    }
    return p;
  }
}
