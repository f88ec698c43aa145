import path from 'node:path';
import type { BlockRead, Disk, DiskDirent, DiskStat, DownloadSink } from './disk.js';
import { sha256, type FileHash } from './hasher.js';
import { MemDownload } from './mem-download.js';
import { BLOCK_BYTES } from './record.js';

type Kind = 'file' | 'dir' | 'symlink';

interface Node {
  kind: Kind;
  mode: number;
  mtimeMs: number;
  ino: number;
  data: Buffer;
  target: string;
}

/** A fault to inject: `op` on paths starting with `prefix` throws `code`, `times` times. */
interface Fault {
  /** A port call, or `downloadWrite`: a write to a download's file. */
  op: FaultOp;
  prefix: string;
  code: string;
  times: number;
}

type FaultOp = keyof Disk | 'downloadWrite';

/** An Error with an errno code, as node:fs throws them. */
function errno(code: string, op: string, p: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${p}'`), { code });
}

/**
 * The disk port in memory, for tests of the mirror's rules: POSIX answers (ENOENT, ENOTDIR,
 * EEXIST, ENOTEMPTY, EISDIR), any call failing on demand (`fail`), and what a user does
 * between two of the mirror's steps (`writeFile`, `remove`). Paths are absolute, `/`-separated.
 */
export class MemDisk implements Disk {
  private readonly nodes = new Map<string, Node>();
  /** Each directory's entries as last made durable (fsyncDir, syncAll): what a crash keeps. */
  private readonly durable = new Map<string, Map<string, Node>>();
  private readonly faults: Fault[] = [];
  private nextIno = 2;
  /** The clock mtimes are stamped with (tests may move it, or give a clock). */
  nowMs = 1_000_000;

  constructor(
    root = '/',
    private readonly clock: () => number = () => this.nowMs,
  ) {
    this.nodes.set('/', this.make('dir'));
    for (let p = '', parts = root.split('/').filter(Boolean), i = 0; i < parts.length; i++) {
      p += `/${parts[i]}`;
      this.nodes.set(p, this.make('dir'));
    }
    this.syncAll();
  }

  /** The kernel writes every directory back (sync(2), or its writeback every few seconds). */
  syncAll(): void {
    for (const [p, n] of this.nodes) if (n.kind === 'dir') this.snapshot(p);
  }

  /**
   * The power goes: each directory holds again the entries it had when last made durable (a
   * create, rename or remove since is undone; a file rewritten since is its old self again).
   * What a file held when its directory was synced is kept: the mirror syncs content before
   * it renames it in.
   */
  crash(): void {
    const kept = new Map<string, Node>([['/', this.nodes.get('/')!]]);
    const walk = (dir: string): void => {
      for (const [name, node] of this.durable.get(dir) ?? []) {
        const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
        kept.set(p, node);
        if (node.kind === 'dir') walk(p);
      }
    };
    walk('/');
    this.nodes.clear();
    for (const [p, n] of kept) this.nodes.set(p, n);
  }

  private snapshot(dir: string): void {
    const entries = new Map<string, Node>();
    for (const c of this.children(dir)) entries.set(path.posix.basename(c), this.nodes.get(c)!);
    this.durable.set(dir, entries);
  }

  /** Make `op` on paths under `prefix` throw `code` the next `times` times. */
  fail(op: FaultOp, prefix: string, code: string, times = 1): void {
    this.faults.push({ op, prefix, code, times });
  }

  /** A user writes a file (parents must exist). */
  writeFile(abs: string, data: string | Buffer, mode = 0o644): void {
    this.parentDir(abs, 'open');
    const cur = this.nodes.get(abs);
    if (cur?.kind === 'dir') throw errno('EISDIR', 'open', abs);
    this.nodes.set(abs, { ...this.make('file', mode), data: Buffer.from(data) });
  }

  readFile(abs: string): Buffer {
    const n = this.get(abs, 'open');
    if (n.kind !== 'file') throw errno('EISDIR', 'open', abs);
    return n.data;
  }

  readWhole(abs: string): Promise<Buffer> {
    return this.attempt('readWhole', abs, () => Buffer.from(this.fileAt(abs)));
  }

  /** A regular file's bytes; no symlink followed. */
  private fileAt(abs: string): Buffer {
    const n = this.get(abs, 'open');
    if (n.kind === 'symlink') throw errno('ELOOP', 'open', abs);
    if (n.kind !== 'file') throw errno('EISDIR', 'read', abs);
    return n.data;
  }

  readlink(abs: string): string {
    const n = this.get(abs, 'readlink');
    if (n.kind !== 'symlink') throw errno('EINVAL', 'readlink', abs);
    return n.target;
  }

  /** Every path at or under `abs`, sorted (for tests to look at the whole tree). */
  paths(abs: string): string[] {
    const under = abs === '/' ? '/' : `${abs}/`;
    return [...this.nodes.keys()].filter((p) => p === abs || p.startsWith(under)).sort();
  }

  /** A user removes a path and everything under it. */
  remove(abs: string): void {
    for (const p of [...this.nodes.keys()])
      if (p === abs || p.startsWith(`${abs}/`)) this.nodes.delete(p);
  }

  lstatIfAny(abs: string): DiskStat | null {
    this.check('lstat', abs);
    try {
      return this.statOf(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  lstat(abs: string): DiskStat {
    this.check('lstat', abs);
    return this.statOf(abs);
  }

  private statOf(abs: string): DiskStat {
    const n = this.get(abs, 'lstat');
    return {
      isFile: () => n.kind === 'file',
      isDirectory: () => n.kind === 'dir',
      isSymbolicLink: () => n.kind === 'symlink',
      mode: n.mode,
      mtimeMs: n.mtimeMs,
      size: n.kind === 'symlink' ? Buffer.byteLength(n.target) : n.data.length,
      ino: n.ino,
      dev: 1,
    };
  }

  readdirTyped(abs: string): DiskDirent[] {
    this.check('readdirTyped', abs);
    if (this.get(abs, 'scandir').kind !== 'dir') throw errno('ENOTDIR', 'scandir', abs);
    return this.children(abs).map((p) => {
      const name = path.posix.basename(p);
      const kind = this.nodes.get(p)!.kind;
      return {
        name,
        isFile: () => kind === 'file',
        isDirectory: () => kind === 'dir',
        isSymbolicLink: () => kind === 'symlink',
      };
    });
  }

  hashFile(abs: string, _sizeHint: number): Promise<FileHash> {
    return this.attempt('hashFile', abs, () => {
      const data = Buffer.from(this.fileAt(abs));
      const blocks: string[] = [];
      if (data.length > BLOCK_BYTES)
        for (let at = 0; at < data.length; at += BLOCK_BYTES)
          blocks.push(sha256(data.subarray(at, at + BLOCK_BYTES)));
      return { size: data.length, hash: sha256(data), blocks, statAfter: this.statOf(abs), data };
    });
  }

  readdir(abs: string): string[] {
    this.check('readdir', abs);
    if (this.get(abs, 'scandir').kind !== 'dir') throw errno('ENOTDIR', 'scandir', abs);
    return this.children(abs).map((p) => path.posix.basename(p));
  }

  mkdir(abs: string, opts: { recursive?: boolean } = {}): void {
    this.check('mkdir', abs);
    const cur = this.nodes.get(abs);
    if (opts.recursive === true) {
      if (cur?.kind === 'dir') return;
      const parent = path.posix.dirname(abs);
      if (!this.nodes.has(parent)) this.mkdir(parent, opts);
    }
    this.parentDir(abs, 'mkdir');
    if (cur !== undefined) throw errno('EEXIST', 'mkdir', abs);
    this.nodes.set(abs, this.make('dir', 0o755));
  }

  rmdir(abs: string): void {
    this.check('rmdir', abs);
    if (this.get(abs, 'rmdir').kind !== 'dir') throw errno('ENOTDIR', 'rmdir', abs);
    if (this.children(abs).length > 0) throw errno('ENOTEMPTY', 'rmdir', abs);
    this.nodes.delete(abs);
  }

  fsyncDir(abs: string): Promise<void> {
    return this.attempt('fsyncDir', abs, () => {
      if (this.get(abs, 'open').kind !== 'dir') throw errno('ENOTDIR', 'open', abs);
      this.snapshot(abs);
    });
  }

  removeTree(abs: string): Promise<void> {
    return this.attempt('removeTree', abs, () => this.remove(abs));
  }

  readBlock(abs: string, index: number, stat: boolean): Promise<BlockRead | null> {
    return this.attempt('readBlock', abs, () => {
      const n = this.nodes.get(abs);
      if (n?.kind !== 'file') return null; // none, a directory, or a symlink (not followed)
      const at = index * BLOCK_BYTES;
      if (at >= n.data.length) return null;
      const data = Buffer.from(n.data.subarray(at, at + BLOCK_BYTES));
      return { data, statAfter: stat ? this.statOf(abs) : null };
    });
  }

  readRange(abs: string, offset: number, length: number): Promise<Buffer | null> {
    return this.attempt('readRange', abs, () => {
      const n = this.nodes.get(abs);
      if (n?.kind !== 'file' || n.data.length < offset + length) return null;
      return Buffer.from(n.data.subarray(offset, offset + length));
    });
  }

  /** A download writes into its file's node (kept open across a rename, as a descriptor is). */
  openDownload(abs: string): Promise<DownloadSink> {
    return this.attempt('openDownload', abs, () => {
      this.parentDir(abs, 'open');
      let n = this.nodes.get(abs);
      if (n?.kind === 'dir') throw errno('EISDIR', 'open', abs);
      if (n === undefined) this.nodes.set(abs, (n = this.make('file', 0o644)));
      return new MemDownload(n, () => this.check('downloadWrite', abs));
    });
  }

  writeSynced(abs: string, data: Uint8Array, mode: number): Promise<void> {
    return this.attempt('writeSynced', abs, () => {
      this.parentDir(abs, 'open');
      const n = this.nodes.get(abs);
      if (n?.kind === 'dir') throw errno('EISDIR', 'open', abs);
      if (n?.kind === 'file') n.data = Buffer.from(data);
      else this.nodes.set(abs, { ...this.make('file', mode & 0o7777), data: Buffer.from(data) });
    });
  }

  /** `fn` after the fault check, its throw as a rejection. */
  private attempt<T>(op: keyof Disk, abs: string, fn: () => T): Promise<T> {
    try {
      this.check(op, abs);
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  rename(from: string, to: string): void {
    this.check('rename', from);
    const n = this.get(from, 'rename');
    this.parentDir(to, 'rename');
    const dest = this.nodes.get(to);
    if (dest !== undefined) {
      if (n.kind === 'dir' && dest.kind !== 'dir') throw errno('ENOTDIR', 'rename', to);
      if (n.kind !== 'dir' && dest.kind === 'dir') throw errno('EISDIR', 'rename', to);
      if (dest.kind === 'dir' && this.children(to).length > 0)
        throw errno('ENOTEMPTY', 'rename', to);
    }
    for (const p of [...this.nodes.keys()]) {
      if (p !== from && !p.startsWith(`${from}/`)) continue;
      const node = this.nodes.get(p)!;
      this.nodes.delete(p);
      this.nodes.set(to + p.slice(from.length), node);
    }
  }

  symlink(target: string, abs: string): void {
    this.check('symlink', abs);
    this.parentDir(abs, 'symlink');
    if (this.nodes.has(abs)) throw errno('EEXIST', 'symlink', abs);
    this.nodes.set(abs, { ...this.make('symlink', 0o777), target });
  }

  utimes(abs: string, _atime: Date, mtime: Date): void {
    this.check('utimes', abs);
    this.get(abs, 'utime').mtimeMs = mtime.getTime();
  }

  chmod(abs: string, mode: number): void {
    this.check('chmod', abs);
    this.get(abs, 'chmod').mode = mode & 0o7777;
  }

  private make(kind: Kind, mode = 0o755): Node {
    return {
      kind,
      mode,
      mtimeMs: this.clock(),
      ino: this.nextIno++,
      data: Buffer.alloc(0),
      target: '',
    };
  }

  private children(abs: string): string[] {
    const prefix = abs === '/' ? '/' : `${abs}/`;
    return [...this.nodes.keys()].filter(
      (p) => p !== abs && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'),
    );
  }

  private get(abs: string, op: string): Node {
    const parent = path.posix.dirname(abs);
    if (parent !== abs) {
      const up = this.nodes.get(parent);
      if (up !== undefined && up.kind !== 'dir') throw errno('ENOTDIR', op, abs);
    }
    const n = this.nodes.get(abs);
    if (n === undefined) throw errno('ENOENT', op, abs);
    return n;
  }

  private parentDir(abs: string, op: string): void {
    const parent = this.nodes.get(path.posix.dirname(abs));
    if (parent === undefined) throw errno('ENOENT', op, abs);
    if (parent.kind !== 'dir') throw errno('ENOTDIR', op, abs);
  }

  private check(op: FaultOp, abs: string): void {
    const f = this.faults.find((x) => x.op === op && abs.startsWith(x.prefix) && x.times > 0);
    if (f === undefined) return;
    f.times--;
    throw errno(f.code, op, abs);
  }
}
