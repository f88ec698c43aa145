import { link, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Who holds a data dir: written to `<data>/lock` while a node runs. */
export interface LockInfo {
  pid: number;
  /** host:port of its HTTP server (for `status` and `forget-peer` while it runs). */
  advertise: string | null;
  /** Its control token (`forget-peer` while it runs); the file is readable by its owner only. */
  token?: string;
}

export class LockedError extends Error {
  constructor(
    message: string,
    /** The live holder, if one was seen (null: lost to other takers). */
    readonly holderPid: number | null,
  ) {
    super(message);
  }
}

/** Who takes the lock and how liveness is judged (tests stand in for other processes). */
export interface LockOptions {
  pid?: number;
  isAlive?: (pid: number) => boolean;
}

/** Takers that keep losing races to stale-lock takeovers give up after this many tries. */
const MAX_TAKEOVERS = 20;
/** A lock that does not parse may be being written (see `place`): wait this long before calling it stale. */
const UNREADABLE_GRACE_MS = 1000;
const RETRY_MS = 50;
/** What link(2) fails with on filesystems without hard links (FAT, some network mounts). */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const errno = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? '';

function parse(text: string): LockInfo | null {
  try {
    const x = JSON.parse(text) as LockInfo;
    return typeof x.pid === 'number' ? x : null;
  } catch {
    return null;
  }
}

/** The lock's text, or null if there is none. */
async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return null;
    throw e;
  }
}

/** The running holder of `dataDir`'s lock, or null if there is none or it died. */
export async function readLock(dataDir: string): Promise<LockInfo | null> {
  const text = await readText(path.join(dataDir, 'lock')).catch(() => null);
  const x = text === null ? null : parse(text);
  return x !== null && alive(x.pid) ? x : null;
}

/**
 * Take the data dir for this process: a live holder makes this fail, a stale lock is taken
 * over. Two nodes on one data dir would append to one write-ahead log, so the lock is taken
 * atomically: its file appears complete (written aside, then hard-linked into place, which
 * fails if the name exists), and a stale one is deleted only under a second lock (see
 * `breakStale`), so two takers of the same stale lock cannot both win. Rewrites go through a
 * rename, so a reader never sees a half-written lock.
 */
export async function takeLock(
  dataDir: string,
  opts: LockOptions = {},
): Promise<{ update: (i: LockInfo) => Promise<void>; release: () => Promise<void> }> {
  const pid = opts.pid ?? process.pid;
  const isAlive = opts.isAlive ?? alive;
  const file = path.join(dataDir, 'lock');
  const aside = `${file}.${pid}`;

  const mine = JSON.stringify({ pid, advertise: null }) + '\n';
  await removeDeadAsides(dataDir, isAlive);
  await writeFile(aside, mine, { mode: 0o600 });
  try {
    let unreadableSinceMs: number | null = null;
    let takeovers = 0;
    while (!(await place(aside, file, mine))) {
      const text = await readText(file);
      if (text === null) continue; // released meanwhile: try again
      const holder = parse(text);
      if (holder === null) {
        unreadableSinceMs ??= Date.now();
        if (Date.now() - unreadableSinceMs < UNREADABLE_GRACE_MS) {
          await new Promise((r) => setTimeout(r, RETRY_MS));
          continue;
        }
      }
      // A lock naming our own pid is stale too: a restarted container reuses low pids.
      if (holder !== null && holder.pid !== pid && isAlive(holder.pid))
        throw new LockedError(`data dir ${dataDir} is in use by process ${holder.pid}`, holder.pid);
      if (++takeovers > MAX_TAKEOVERS)
        throw new LockedError(`data dir ${dataDir}: could not take its lock (contended)`, null);
      await breakStale(file, aside, mine, text, pid, isAlive);
    }
  } finally {
    await unlink(aside).catch(() => undefined);
  }
  return {
    update: async (i) => {
      await writeFile(aside, JSON.stringify(i) + '\n', { mode: 0o600 });
      await rename(aside, file);
    },
    release: () => rm(file, { force: true }),
  };
}

/** A taker killed between writing its lock aside and removing it leaves `lock.<pid>` behind. */
async function removeDeadAsides(dataDir: string, isAlive: (pid: number) => boolean): Promise<void> {
  const names = await readdir(dataDir).catch(() => [] as string[]);
  for (const n of names) {
    const m = /^lock\.(\d+)$/.exec(n);
    if (m !== null && !isAlive(Number(m[1])))
      await unlink(path.join(dataDir, n)).catch(() => undefined);
  }
}

/** Put our lock (already written at `aside`) in place unless a lock exists: false if one does. */
async function place(aside: string, file: string, text: string): Promise<boolean> {
  try {
    await link(aside, file);
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    if (!NO_LINKS.has(errno(e))) throw e;
  }
  // No hard links here: create exclusively, then write. A reader may find the file empty for
  // a moment, which is why an unreadable lock is given UNREADABLE_GRACE_MS.
  try {
    await writeFile(file, text, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    throw e;
  }
}

/**
 * Delete the stale lock `file` (which read as `staleText`), if it still is that lock. Only the
 * taker holding `<file>.break` may delete a lock, after reading it again under that lock: while
 * the stale lock exists nobody can place a new one, so the one it deletes is the stale one.
 * (Moving the stale lock aside without this left the name free for an instant even when what
 * was moved turned out to be a live lock, and a third taker could win beside the live holder.)
 * A break lock left by a taker that died holding it is cleared by the next one; two takers
 * clearing it at once is the one race left, and needs a crash inside this function first.
 */
async function breakStale(
  file: string,
  aside: string,
  mine: string,
  staleText: string,
  ownPid: number,
  isAlive: (pid: number) => boolean,
): Promise<void> {
  const breakFile = `${file}.break`;
  if (!(await place(aside, breakFile, mine))) {
    const breaker = parse((await readText(breakFile)) ?? '');
    if (breaker !== null && (breaker.pid === ownPid || !isAlive(breaker.pid)))
      await unlink(breakFile).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, RETRY_MS));
    return;
  }
  try {
    if ((await readText(file)) === staleText) await unlink(file);
  } finally {
    await unlink(breakFile);
  }
}
