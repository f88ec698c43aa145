import { open, rename } from 'node:fs/promises';
import path from 'node:path';

/** fsync a directory so a rename or a create inside it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Appends bytes to the file being written (each call's bytes after the previous call's). */
export type WriteChunk = (bytes: Uint8Array) => Promise<void>;

/**
 * Write a file so that readers see either the old content or the whole new one. `data` is the
 * content, or a function that writes it in pieces (a large file need not be one buffer).
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | ((write: WriteChunk) => Promise<void>),
): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    if (data instanceof Uint8Array) await fh.writeFile(data);
    else await data((bytes) => fh.writeFile(bytes));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}
