import path from 'node:path';
import type { StoreDisk, StoreFile } from './disk.js';

/** A file's bytes as the process sees them, and as a crash would leave them. */
interface Inode {
  data: Buffer;
  /** Bumped by every change to `data`, so a late sync never installs older bytes. */
  version: number;
  synced: Buffer;
  syncedVersion: number;
}

/** A fault to inject: `op` on paths starting with `prefix` fails with `code`, `times` times. */
interface Fault {
  op: keyof StoreDisk | 'write' | 'sync';
  prefix: string;
  code: string;
  times: number;
}

/** Runs `fn` when the device answers (the simulator: later on its clock). */
export type DeviceDelay = (fn: () => void) => void;

function errno(code: string, op: string, p: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${p}'`), { code });
}

/** A promise that never settles: what a call made by a process that died hears back. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/**
 * The store's disk in memory, with a crash's semantics: written bytes are durable only once
 * their file is synced, and a create, rename or remove only once its directory is. `crash()`
 * puts the disk back to what was durable (keeping, if asked, part of each unsynced tail, as a
 * torn write would) and kills the process that used it: every call it made or makes later
 * never answers. Directories are made durable at once (the store makes them once, first).
 * Paths are absolute, `/`-separated.
 */
export class MemStoreDisk {
  private names = new Map<string, Inode>();
  private durable = new Map<string, Inode>();
  private readonly dirs = new Set<string>(['/']);
  private readonly faults: Fault[] = [];
  /** Per directory: changes to its entries, and the latest change a sync made durable. */
  private readonly dirVersion = new Map<string, number>();
  private readonly dirSynced = new Map<string, number>();
  /** Bumped by every crash; a view made before it is dead. */
  private life = 0;

  /**
   * The disk as one process sees it. `delay` runs the answers of syncs (file and directory)
   * when the device would give them; other calls answer at once.
   */
  view(delay: DeviceDelay = (fn) => queueMicrotask(fn)): StoreDisk {
    const life = this.life;
    const alive = (): boolean => life === this.life;
    const call = <T>(op: Fault['op'], p: string, fn: () => T): Promise<T> => {
      if (!alive()) return never();
      try {
        this.check(op, p);
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(e as Error);
      }
    };
    const later = <T>(op: Fault['op'], p: string, fn: () => T): Promise<T> => {
      if (!alive()) return never();
      return new Promise<T>((resolve, reject) =>
        delay(() => {
          if (!alive()) return; // the process died before the device answered
          try {
            this.check(op, p);
            resolve(fn());
          } catch (e) {
            reject(e as Error);
          }
        }),
      );
    };
    return {
      mkdirp: (dir) => call('mkdirp', dir, () => this.mkdirp(dir)),
      readdir: (dir) => call('readdir', dir, () => this.list(dir)),
      readFile: (file) => call('readFile', file, () => Buffer.from(this.inode(file, 'open').data)),
      open: (file, flags, _mode) =>
        call('open', file, () => this.openFile(file, flags, alive, later, call)),
      rename: (from, to) => call('rename', from, () => this.move(from, to)),
      remove: (file) =>
        call('remove', file, () => {
          if (this.names.delete(file)) this.touch(file);
        }),
      truncate: (file, bytes) =>
        call('truncate', file, () => {
          const n = this.inode(file, 'truncate');
          n.data = Buffer.from(n.data.subarray(0, bytes));
          n.version++;
        }),
      syncFile: (file) => {
        const n = this.names.get(file);
        if (n === undefined) return call('syncFile', file, () => void this.inode(file, 'open'));
        const bytes = Buffer.from(n.data);
        const version = n.version;
        return later('syncFile', file, () => MemStoreDisk.install(n, bytes, version));
      },
      fsyncDir: (dir) => {
        const entries = [...this.names].filter(([p]) => path.posix.dirname(p) === dir);
        const version = this.dirVersion.get(dir) ?? 0;
        return later('fsyncDir', dir, () => this.syncDir(dir, entries, version));
      },
    };
  }

  /** Make `op` on paths under `prefix` fail with `code` the next `times` times. */
  fail(op: Fault['op'], prefix: string, code: string, times = 1): void {
    this.faults.push({ op, prefix, code, times });
  }

  /**
   * The machine dies (a power cut), and the process with it: only what was durable is left. `keepTorn`
   * says how many bytes of a file's unsynced tail reached the platter anyway (default none).
   */
  crash(keepTorn: (unsyncedBytes: number) => number = () => 0): void {
    this.life++;
    this.names = new Map(this.durable);
    for (const n of new Set(this.names.values())) {
      const tail = n.data.subarray(n.synced.length);
      const prefixSynced = n.data.subarray(0, n.synced.length).equals(n.synced);
      const kept = prefixSynced ? Math.min(tail.length, keepTorn(tail.length)) : 0;
      // What is left is on the platter now: durable, whatever crash comes next.
      n.data = Buffer.concat([n.synced, tail.subarray(0, kept)]);
      n.version++;
      n.synced = n.data;
      n.syncedVersion = n.version;
    }
  }

  /**
   * The process dies but the machine does not (kill -9): what it wrote stays in the page
   * cache, readable and not yet durable; its calls never answer.
   */
  kill(): void {
    this.life++;
  }

  /** A sync's bytes become the durable ones, unless a later sync's got there first. */
  private static install(n: Inode, bytes: Buffer, version: number): void {
    if (version <= n.syncedVersion) return;
    n.synced = bytes;
    n.syncedVersion = version;
  }

  /** Files there now (as the live process sees them), for tests. */
  files(): string[] {
    return [...this.names.keys()].sort();
  }

  private openFile(
    file: string,
    flags: 'w' | 'wx',
    alive: () => boolean,
    later: <T>(op: Fault['op'], p: string, fn: () => T) => Promise<T>,
    call: <T>(op: Fault['op'], p: string, fn: () => T) => Promise<T>,
  ): StoreFile {
    if (!this.dirs.has(path.posix.dirname(file))) throw errno('ENOENT', 'open', file);
    let n = this.names.get(file);
    if (n !== undefined && flags === 'wx') throw errno('EEXIST', 'open', file);
    if (n === undefined) {
      n = { data: Buffer.alloc(0), version: 0, synced: Buffer.alloc(0), syncedVersion: 0 };
      this.names.set(file, n);
      this.touch(file);
    } else {
      n.data = Buffer.alloc(0);
      n.version++;
    }
    const inode = n;
    let pos = 0;
    const write = (bytes: Uint8Array, at: number): number => {
      const end = at + bytes.length;
      if (inode.data.length < end)
        inode.data = Buffer.concat([inode.data, Buffer.alloc(end - inode.data.length)]);
      inode.data.set(bytes, at);
      inode.version++;
      return bytes.length;
    };
    const sync = (): Promise<void> => {
      const bytes = Buffer.from(inode.data);
      const version = inode.version;
      return later('sync', file, () => MemStoreDisk.install(inode, bytes, version));
    };
    return {
      writev: (bufs, position) =>
        call('write', file, () => {
          let at = position;
          for (const b of bufs) at += write(b, at);
          return at - position;
        }),
      append: (data) => call('write', file, () => void (pos += write(data, pos))),
      appendSync: (data) => {
        if (!alive()) throw errno('EBADF', 'write', file); // a dead process writes nothing
        this.check('write', file);
        pos += write(data, pos);
      },
      sync,
      datasync: sync,
      chmod: () => call('write', file, () => undefined),
      close: () => (alive() ? Promise.resolve() : never()),
    };
  }

  private mkdirp(dir: string): void {
    for (let d = dir; !this.dirs.has(d); d = path.posix.dirname(d)) this.dirs.add(d);
  }

  private list(dir: string): string[] {
    if (!this.dirs.has(dir)) throw errno('ENOENT', 'scandir', dir);
    const out = new Set<string>();
    for (const p of [...this.names.keys(), ...this.dirs])
      if (p !== dir && path.posix.dirname(p) === dir) out.add(path.posix.basename(p));
    return [...out];
  }

  private inode(file: string, op: string): Inode {
    const n = this.names.get(file);
    if (n === undefined) throw errno('ENOENT', op, file);
    return n;
  }

  private move(from: string, to: string): void {
    const n = this.inode(from, 'rename');
    if (!this.dirs.has(path.posix.dirname(to))) throw errno('ENOENT', 'rename', to);
    this.names.delete(from);
    this.names.set(to, n);
    this.touch(from);
    this.touch(to);
  }

  /** An entry of `p`'s directory changed. */
  private touch(p: string): void {
    const dir = path.posix.dirname(p);
    this.dirVersion.set(dir, (this.dirVersion.get(dir) ?? 0) + 1);
  }

  /** The directory's entries as they were when its sync was asked for become durable. */
  private syncDir(dir: string, entries: [string, Inode][], version: number): void {
    if (version <= (this.dirSynced.get(dir) ?? -1)) return; // a later sync answered first
    this.dirSynced.set(dir, version);
    for (const p of [...this.durable.keys()])
      if (path.posix.dirname(p) === dir) this.durable.delete(p);
    for (const [p, n] of entries) this.durable.set(p, n);
  }

  private check(op: Fault['op'], p: string): void {
    const f = this.faults.find((x) => x.op === op && p.startsWith(x.prefix) && x.times > 0);
    if (f === undefined) return;
    f.times--;
    throw errno(f.code, op, p);
  }
}
