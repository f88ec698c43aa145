import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refuseDirect, refuseDirectWrites } from '../../test/helpers/direct-io.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { AlignedSlots, DownloadFile, readDirect } from './direct-io.js';
import { BLOCK_BYTES } from './record.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('direct-io-')));
afterEach(() => cleanup());

/** O_DIRECT's bit in /proc's octal `flags:` of a descriptor (x86 and arm64 Linux differ). */
const O_DIRECT_BIT = process.arch === 'arm64' ? 0o200000 : 0o40000;
const fdFlags = (fd: number): number =>
  parseInt(/^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);

/** Two whole blocks and a short one, written out of order, then cut to size. */
async function writeBlocks(f: DownloadFile): Promise<Buffer> {
  const parts = [BLOCK_BYTES, BLOCK_BYTES, 1000].map((n) => randomBytes(n));
  for (const i of [2, 0, 1]) await f.write(parts[i]!, i * BLOCK_BYTES);
  const whole = Buffer.concat(parts);
  await f.handle.truncate(whole.length);
  await f.handle.sync();
  return whole;
}

describe('a download file', () => {
  it('is written past the page cache, and holds exactly its bytes once cut to size', async () => {
    const p = path.join(dir, 'd');
    const f = await DownloadFile.open(p);
    try {
      expect(f.direct).toBe(true);
      expect(fdFlags(f.handle.fd) & O_DIRECT_BIT).toBe(O_DIRECT_BIT);
      const whole = await writeBlocks(f);
      expect(f.direct).toBe(true); // no write was refused
      expect((await readFile(p)).equals(whole)).toBe(true);
    } finally {
      await f.close();
    }
  });

  it('is written buffered where O_DIRECT is refused at open', async () => {
    const p = path.join(dir, 'd');
    const f = await DownloadFile.open(p, refuseDirect);
    try {
      expect(f.direct).toBe(false);
      const whole = await writeBlocks(f);
      expect((await readFile(p)).equals(whole)).toBe(true);
    } finally {
      await f.close();
    }
  });

  it('turns buffered at the first refused write, losing no block', async () => {
    const p = path.join(dir, 'd');
    const f = await DownloadFile.open(p, refuseDirectWrites);
    try {
      expect(f.direct).toBe(true);
      const whole = await writeBlocks(f);
      expect(f.direct).toBe(false);
      expect((await readFile(p)).equals(whole)).toBe(true);
    } finally {
      await f.close();
    }
  });
});

describe('readDirect', () => {
  it('reads the asked bytes, not the padding after them, and null past the end', async () => {
    const p = path.join(dir, 'r');
    const data = randomBytes(BLOCK_BYTES + 1000);
    // As an O_DIRECT download leaves its last block until it is truncated: padded.
    await writeFile(p, Buffer.concat([data, Buffer.alloc(4096 - 1000, 7)]));
    expect((await readDirect(p, 0, BLOCK_BYTES))!.equals(data.subarray(0, BLOCK_BYTES))).toBe(true);
    expect((await readDirect(p, BLOCK_BYTES, 1000))!.equals(data.subarray(BLOCK_BYTES))).toBe(true);
    await truncate(p, data.length);
    expect((await readDirect(p, BLOCK_BYTES, 1000))!.equals(data.subarray(BLOCK_BYTES))).toBe(true);
    expect(await readDirect(p, 2 * BLOCK_BYTES, 1000)).toBeNull();
    expect(await readDirect(path.join(dir, 'missing'), 0, 10)).toBeNull();
  });

  it('reads buffered where O_DIRECT is refused', async () => {
    const p = path.join(dir, 'r');
    const data = randomBytes(5000);
    await writeFile(p, data);
    expect((await readDirect(p, 0, 5000, refuseDirect))!.equals(data)).toBe(true);
    expect((await readDirect(p, 0, 5000, refuseDirectWrites))!.equals(data)).toBe(true);
  });

  it('never follows a symlink', async () => {
    const target = path.join(dir, 't');
    await writeFile(target, randomBytes(100));
    await symlink(target, path.join(dir, 'link'));
    expect(await readDirect(path.join(dir, 'link'), 0, 100)).toBeNull();
  });
});

describe('aligned slots', () => {
  it('hands out at most its slots, page-aligned, and the next waiter gets a released one', async () => {
    const slots = new AlignedSlots(2);
    const a = await slots.acquire();
    const b = await slots.acquire();
    expect(a.byteOffset % 4096).toBe(0);
    expect(a.length).toBe(BLOCK_BYTES);
    expect(a.buffer).toBe(b.buffer);
    let third: Buffer | null = null;
    const waiting = slots.acquire().then((s) => (third = s));
    await new Promise((r) => setImmediate(r));
    expect(third).toBeNull();
    slots.release(a);
    expect(await waiting).toBe(a);
    // The slot's own memory is page-aligned: O_DIRECT takes it (a Buffer from malloc is not).
    const p = path.join(dir, 's');
    const f = await DownloadFile.open(p);
    try {
      await f.write(b.fill(3), 0);
      expect(f.direct).toBe(true);
    } finally {
      await f.close();
    }
    expect((await readFile(p)).equals(Buffer.alloc(BLOCK_BYTES, 3))).toBe(true);
  });
});
