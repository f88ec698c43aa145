import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

const einval = (): NodeJS.ErrnoException =>
  Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });

/** An opener for a filesystem that refuses O_DIRECT at open (as tmpfs on older kernels does). */
export function refuseDirect(path: string, flags: number): Promise<FileHandle> {
  if (flags & constants.O_DIRECT) return Promise.reject(einval());
  return open(path, flags);
}

/**
 * An opener for a filesystem that takes O_DIRECT at open but refuses the writes (an alignment it
 * wants larger than ours): the handle's writes fail with EINVAL while O_DIRECT was asked for.
 */
export async function refuseDirectWrites(path: string, flags: number): Promise<FileHandle> {
  const fh = await open(path, flags & ~constants.O_DIRECT);
  if (!(flags & constants.O_DIRECT)) return fh;
  return new Proxy(fh, {
    get(target, prop, receiver) {
      if (prop === 'write' || prop === 'read') return () => Promise.reject(einval());
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}
