import { EventEmitter } from 'node:events';
import path from 'node:path';
import {
  withDefaults,
  workDir,
  type FileEvent,
  type FileSyncOptions,
  type Hints,
  type MirrorPorts,
} from './options.js';
import { logger } from '../log/index.js';
import { Applier } from './applier.js';
import { ApplyQueue } from './apply-queue.js';
import { every } from './clock.js';
import type { Content } from './content.js';
import type { Ctx } from './context.js';
import { DiskIndex, MIN_SAVE_INTERVAL_MS } from './disk-index.js';
import { HeldDeletions } from './held-deletions.js';
import { IGNORE_FILE, IgnoreRules } from './ignore.js';
import { lstatOr } from './disk.js';
import { absPath, FILE_PREFIX, keyOf, pathOf } from './paths.js';
import { isDeletedRecord, sameVersion, type Version } from './record.js';
import { UnreadablePaths } from './localfs.js';
import { RealParents } from './safe-fs.js';
import { markRunning, markStopped } from './run-marker.js';
import { Scanner } from './scanner.js';
import { SupersededError, type TransferVersions } from './transfer.js';
import { Trash } from './trash.js';

export { workDir, type FileEvent, type FileSyncOptions, type MirrorPorts };

const log = logger('filesync');

/**
 * The directory mirror on one node: start scan + watcher publish local changes as FileRecords;
 * remote records are applied to disk. One lock per path orders the two sides.
 */
export class FileSync extends EventEmitter<{ event: [FileEvent] }> {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly queue: ApplyQueue;
  /** Applies cut short by close(): the next start applies them (their KV version is newer). */
  private interrupted = 0;
  private timers: (() => void)[] = [];
  private closed = false;
  private rescanPending = false;
  /** How long the start scan took (null while it runs): /status reports it. */
  startScanMs: number | null = null;
  private watcher: Hints | null = null;
  /** Stops WaveKV collecting delete records on this mirror's say (see mayForget). */
  private unretire: () => void = () => undefined;
  readonly ctx: Ctx;
  private readonly scanner: Scanner;
  private readonly applier: Applier;

  private constructor(
    private readonly opts: FileSyncOptions,
    private readonly ports: MirrorPorts,
    index: DiskIndex,
    ignore: IgnoreRules,
    deletions: HeldDeletions,
  ) {
    super();
    const { disk, clock } = ports;
    const parents = new RealParents(opts.root, disk, clock.now);
    const transfer = ports.content(this.versions(index), index, parents);
    this.ctx = {
      root: opts.root,
      disk,
      clock,
      node: opts.replica.node,
      index,
      landing: new Map(),
      ignore,
      parents,
      unreadable: new UnreadablePaths((rel, code) => {
        log.warn('cannot read; not published, not deleted anywhere', { path: rel, error: code });
        this.ctx.event('error', rel, `cannot read (${code})`);
      }),
      trash: new Trash(
        path.join(workDir(opts.root), 'trash'),
        opts.keepDeletedMs ?? 3600_000,
        disk,
        clock.now,
      ),
      transfer,
      maxConflicts: opts.maxConflicts ?? 10,
      allowMassDelete: opts.allowMassDelete ?? false,
      deletions,
      indexMayLag: false,
      lagging: null,
      event: (kind, p, detail) =>
        this.emit('event', {
          kind,
          path: p,
          ...(detail !== undefined && { detail }),
          timeMs: clock.now(),
        }),
      withPath: (rel, fn) => this.withPath(rel, fn),
    };
    this.scanner = new Scanner(this.ctx);
    this.applier = new Applier(this.ctx, this.scanner);
    const limit = opts.applyConcurrency ?? 64;
    this.queue = new ApplyQueue((rel) => this.applyOne(rel), {
      limit,
      parkedLimit: Math.max(1, Math.floor(limit / 4)),
      reservePerSource: Math.max(1, Math.floor(limit / 8)),
      onFailure: (rel, e, retryInMs) => this.fail(rel, e, retryInMs),
      clock,
    });
  }

  /** What the content transfer asks this mirror about the KV's versions of a key. */
  private versions(index: DiskIndex): TransferVersions {
    const { node } = this.opts.replica;
    const current = (key: string, v: Version): boolean => {
      const e = node.getEntry(key);
      return e !== undefined && sameVersion([e.meta.node, e.meta.seq], v);
    };
    return {
      current,
      sourceOf: (key) => node.state.sourceOf(key),
      incoming: (key) => {
        const m = node.incomingVersion(key);
        return m === undefined ? undefined : [m.node, m.seq];
      },
      expects: (key, v) => {
        const rel = pathOf(key);
        return (
          rel !== null &&
          current(key, v) &&
          !sameVersion(index.get(rel)?.version ?? null, v) &&
          (this.queue.has(rel) || this.locks.has(rel))
        );
      },
    };
  }

  /** Paths whose apply failed and waits for its next try (content no peer serves, …). */
  get parkedPaths(): number {
    return this.queue.parked;
  }

  static async start(opts: FileSyncOptions): Promise<FileSync> {
    const ports = withDefaults(opts);
    const { disk, dataDisk, clock } = ports;
    disk.mkdir(opts.root, { recursive: true });
    const index = await DiskIndex.load(opts.dataDir, dataDisk, clock.now);
    const ignore = new IgnoreRules(opts.root, opts.ignore ?? [], disk);
    await ignore.reload();
    const deletions = await HeldDeletions.load(
      opts.dataDir,
      opts.allowMassDelete ?? false,
      dataDisk,
    );
    const lastStop = await markRunning(opts.dataDir, dataDisk, await ports.bootId());
    const fs = new FileSync(opts, ports, index, ignore, deletions);
    if (lastStop === 'power-loss') {
      log.warn(
        'the machine went down under the last run: until the start scan is done, a file the cluster changed since is not taken for a local edit',
      );
      fs.ctx.indexMayLag = true;
    }
    await fs.ctx.transfer.init();
    opts.replica.node.on('change', fs.onChange);
    fs.unretire = opts.replica.node.collectRetired(isDeletedRecord, (key) => fs.mayForget(key));
    if (opts.watch ?? true) {
      fs.watcher = ports.hints(opts.root, ignore, (rel) => fs.hint(rel), {
        onOverflow: () => fs.rescanSoon(),
        isIndexed: (rel, st) => rel !== IGNORE_FILE && fs.scanner.isIndexed(rel, st),
      });
      await fs.watcher.start();
    }
    const lagging = lastStop === 'power-loss' ? ignoredAtStart(ignore) : null;
    const t0 = clock.now();
    const { seen, published } = await fs.scanner.scan();
    fs.startScanMs = clock.now() - t0;
    fs.ctx.indexMayLag = false;
    fs.ctx.lagging = lagging;
    index.forgetLandings();
    log.info('start scan done', { paths: seen, published, ms: fs.startScanMs });
    fs.catchUp(); // records that arrived while we were down (or before this scan)
    fs.every(opts.rescanIntervalMs ?? 60_000, () => fs.rescan());
    fs.every(MIN_SAVE_INTERVAL_MS, () => index.saveIfDue());
    fs.every(600_000, () => fs.ctx.trash.sweep());
    return fs;
  }

  /** Run `fn` every `ms` until close; a failure is logged and the next run still comes. */
  private every(ms: number, fn: () => Promise<unknown>): void {
    const run = (): void =>
      void fn().catch((err: unknown) => log.warn('periodic task failed', { error: String(err) }));
    this.timers.push(every(this.ports.clock, ms, run));
  }

  /**
   * May WaveKV forget this path's delete record (every member has it)? Only once the delete is
   * done here: nothing on disk or in the index at the path and no apply queued, running or
   * parked for it. Else the record still has work to do (a parked delete forgotten would leave
   * the file on disk for the next scan to publish again).
   */
  private mayForget(key: string): boolean {
    const rel = pathOf(key);
    if (this.closed || rel === null || this.queue.has(rel) || this.locks.has(rel)) return false;
    const idx = this.ctx.index.get(rel);
    // An ignored path's entry waits for the rules to change; its delete is no business here.
    return idx === undefined || this.ctx.ignore.ignores(rel, idx.type === 'dir');
  }

  /** The parked paths, when their retries are all that is left to do (see ApplyQueue). */
  get onlyParked(): string[] | null {
    const parked = this.queue.onlyParked();
    const retrying = new Set(parked);
    return parked !== null && [...this.locks.keys()].every((rel) => retrying.has(rel))
      ? parked
      : null;
  }

  /** Wait until no apply is queued or running (tests, `check`). */
  get idle(): boolean {
    return this.queue.size === 0 && this.queue.applying === 0 && this.locks.size === 0;
  }

  /** Paths waiting to be applied, being applied, parked after a failure, and indexed (status). */
  get progress(): {
    applyQueued: number;
    applying: number;
    parked: number;
    unreadable: number;
    indexed: number;
  } {
    return {
      applyQueued: this.queue.size,
      applying: this.queue.applying,
      parked: this.queue.parked,
      unreadable: this.ctx.unreadable.size,
      indexed: this.ctx.index.size,
    };
  }

  get transfers(): Content {
    return this.ctx.transfer;
  }

  private withPath<T>(rel: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(rel) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(rel, tail);
    void tail.then(() => {
      if (this.locks.get(rel) === tail) this.locks.delete(rel);
    });
    return run;
  }

  /** Look at `rel` now: a hint (from the watcher, or a test's). */
  hint(rel: string): void {
    if (this.closed) return;
    if (rel === IGNORE_FILE) void this.reloadIgnore().catch((e: unknown) => this.fail(rel, e));
    this.scanner.check(rel).catch((e: unknown) => this.fail(rel, e));
  }

  /** Apply every KV version the index does not hold. */
  private catchUp(): void {
    for (const e of this.opts.replica.node.entries(FILE_PREFIX, { tombstones: true })) {
      const rel = pathOf(e.key)!;
      const v: Version = [e.meta.node, e.meta.seq];
      if (!sameVersion(this.ctx.index.get(rel)?.version ?? null, v)) this.enqueue(rel);
    }
  }

  /**
   * The ignore file changed (the user's edit or a peer's). An ignored path is left as it is
   * everywhere (see Scanner.checkLocked); one that joins the mirror again is scanned (and
   * watched), and one gone from this disk meanwhile (removed while ignored, as one frees
   * space) is fetched again, not deleted everywhere: its index entry is dropped first, as is
   * that of one whose record was collected meanwhile (the file is then a new one).
   */
  private async reloadIgnore(): Promise<boolean> {
    const { ctx } = this;
    const before = ctx.ignore.frozen();
    if (!(await ctx.ignore.reload())) return false;
    const isDir = (p: string): boolean => ctx.index.get(p)?.type === 'dir';
    const wasIgnored = [...ctx.index.paths()].filter((p) => before.ignores(p, isDir(p)));
    for (const p of wasIgnored) {
      if (ctx.ignore.ignores(p, isDir(p))) continue;
      const gone = lstatOr(ctx.disk, absPath(ctx.root, p)) === null;
      // Its record may have been collected meanwhile: then the file here is a new one.
      if (gone || this.opts.replica.node.getEntry(keyOf(p)) === undefined) ctx.index.delete(p);
    }
    await this.watcher?.refresh();
    await this.scanner.scan();
    this.catchUp();
    return true;
  }

  /** A full rescan, after the ignore rules are read again (a hint for them may be lost). */
  private async rescan(): Promise<void> {
    if (await this.reloadIgnore()) return; // it rescanned
    await this.watcher?.refresh();
    await this.scanner.scan();
  }

  /** One full rescan after hints were dropped; requests while one is pending share it. */
  private rescanSoon(): void {
    if (this.rescanPending || this.closed) return;
    this.rescanPending = true;
    this.ports.clock.setTimeout(() => {
      this.rescanPending = false;
      this.rescan().catch((e: unknown) => log.warn('rescan failed', { error: String(e) }));
    }, 1000);
  }

  private onChange = (c: {
    entry: { key: string };
    source: 'local' | 'remote';
    from?: number;
  }): void => {
    // A block request held for this key must look again: its version may be superseded now.
    this.ctx.transfer.progressed(c.entry.key);
    if (c.source !== 'remote') return;
    const rel = pathOf(c.entry.key);
    if (rel !== null) this.enqueue(rel, c.from);
  };

  private enqueue(rel: string, source?: number): void {
    if (!this.closed) this.queue.add(rel, source);
  }

  /** One apply; rejects only on a failure worth a retry. */
  private async applyOne(rel: string): Promise<void> {
    try {
      await this.applier.apply(rel);
      if (rel === IGNORE_FILE) void this.reloadIgnore().catch((e: unknown) => this.fail(rel, e));
    } catch (e) {
      if (e instanceof SupersededError) return; // the newer version is queued behind it
      if (this.closed) {
        this.interrupted++; // one line at close, not one per path (100,000 when large)
        log.debug('apply cut short by close', { path: rel, error: String(e) });
        return;
      }
      throw e;
    } finally {
      this.ctx.transfer.progressed(keyOf(rel));
    }
  }

  private fail(rel: string, e: unknown, retryInMs?: number): void {
    log.warn('could not sync path', {
      path: rel,
      error: e instanceof Error ? e.message : String(e),
      ...(retryInMs !== undefined && { retryInS: Math.round(retryInMs / 1000) }),
    });
    this.ctx.event('error', rel, e instanceof Error ? e.message : String(e));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unretire();
    this.opts.replica.node.off('change', this.onChange);
    for (const stop of this.timers) stop();
    const queued = this.queue.close();
    await this.watcher?.close();
    this.ctx.transfer.close();
    await Promise.allSettled([...this.locks.values()]);
    const left = queued + this.interrupted;
    if (left > 0) log.info('stopped before applying every change', { paths: left });
    await this.ctx.index.save();
    await markStopped(this.opts.dataDir, this.ports.dataDisk);
  }
}

/** The rules the start scan ran under (the live ones change with the ignore file). */
function ignoredAtStart(ignore: IgnoreRules): Ctx['lagging'] {
  const rules = ignore.frozen();
  return { ignored: (rel) => rules.ignores(rel), seen: new Set() };
}
