import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';

/** Who holds a data dir: written to `<data>/lock` while a node runs. */
export interface LockInfo {
  pid: number;
  /** host:port of its HTTP server (for `status` and `forget-peer` while it runs). */
  advertise: string | null;
}

export class LockedError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readLock(dataDir: string): Promise<LockInfo | null> {
  try {
    const x = JSON.parse(await readFile(path.join(dataDir, 'lock'), 'utf8')) as LockInfo;
    return typeof x.pid === 'number' && alive(x.pid) ? x : null;
  } catch {
    return null;
  }
}

/** Take the data dir for this process; a live holder makes this fail, a stale lock is taken over. */
export async function takeLock(
  dataDir: string,
): Promise<{ update: (i: LockInfo) => Promise<void>; release: () => Promise<void> }> {
  const file = path.join(dataDir, 'lock');
  const holder = await readLock(dataDir);
  if (holder !== null && holder.pid !== process.pid) {
    throw new LockedError(`data dir ${dataDir} is in use by process ${holder.pid}`);
  }
  const write = async (i: LockInfo): Promise<void> => {
    const fh = await open(file, 'w');
    await fh.writeFile(JSON.stringify(i) + '\n');
    await fh.close();
  };
  await write({ pid: process.pid, advertise: null });
  return { update: write, release: () => rm(file, { force: true }) };
}
