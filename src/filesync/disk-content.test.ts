import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { realDisk, type Disk } from './disk.js';
import { MemDisk } from './mem-disk.js';
import { BLOCK_BYTES } from './record.js';

/** A disk holding f (1.5 blocks), d/ (a directory) and l (a symlink to f), under `root`. */
interface Fixture {
  disk: Disk;
  root: string;
  cleanup: () => Promise<void>;
}

const content = Buffer.alloc(BLOCK_BYTES + BLOCK_BYTES / 2, 7);
content[BLOCK_BYTES] = 9;

async function real(): Promise<Fixture> {
  const { dir, cleanup } = await tempDir('disk-content-');
  await writeFile(path.join(dir, 'f'), content);
  await mkdir(path.join(dir, 'd'));
  await symlink('f', path.join(dir, 'l'));
  return { disk: realDisk, root: dir, cleanup };
}

function mem(): Promise<Fixture> {
  const disk = new MemDisk('/r');
  disk.writeFile('/r/f', content);
  disk.mkdir('/r/d');
  disk.symlink('f', '/r/l');
  return Promise.resolve({ disk, root: '/r', cleanup: () => Promise.resolve() });
}

// The transfer's calls answer alike on the real disk and on the simulator's.
describe.each([
  ['the real disk', real],
  ['MemDisk', mem],
])('the transfer’s disk calls on %s', (_name, make) => {
  let fx: Fixture;
  afterEach(() => fx.cleanup());

  it('reads blocks of a file only, never through a symlink, none past the end', async () => {
    fx = await make();
    const at = (rel: string): string => path.posix.join(fx.root, rel);
    const b1 = await fx.disk.readBlock(at('f'), 1, true);
    expect(b1!.data.equals(content.subarray(BLOCK_BYTES))).toBe(true);
    expect(b1!.statAfter!.size).toBe(content.length);
    expect((await fx.disk.readBlock(at('f'), 0, false))!.statAfter).toBeNull();
    expect(await fx.disk.readBlock(at('f'), 2, false)).toBeNull();
    expect(await fx.disk.readBlock(at('d'), 0, false)).toBeNull();
    expect(await fx.disk.readBlock(at('l'), 0, false)).toBeNull();
    expect(await fx.disk.readBlock(at('missing'), 0, false)).toBeNull();
    expect(
      (await fx.disk.readRange(at('f'), BLOCK_BYTES, 10))!.equals(
        Buffer.alloc(10, 7).fill(9, 0, 1),
      ),
    ).toBe(true);
    expect(await fx.disk.readRange(at('f'), BLOCK_BYTES, BLOCK_BYTES)).toBeNull();
  });

  it('writes a download block by block, resumable, cut to its size', async () => {
    fx = await make();
    const tmp = path.posix.join(fx.root, 'dl');
    let file = await fx.disk.openDownload(tmp);
    expect(await file.size()).toBe(0);
    await file.write(content.subarray(BLOCK_BYTES), BLOCK_BYTES); // blocks land out of order
    await file.close();
    file = await fx.disk.openDownload(tmp); // resumed: what was written is still there
    expect(await file.size()).toBeGreaterThanOrEqual(content.length);
    await file.write(content.subarray(0, BLOCK_BYTES), 0);
    await file.truncate(content.length);
    await file.datasync();
    await file.sync();
    await file.close();
    expect((await fx.disk.readWhole(tmp)).equals(content)).toBe(true);
  });

  it('writes a small file whole, with its mode', async () => {
    fx = await make();
    const p = path.posix.join(fx.root, 'small');
    await fx.disk.writeSynced(p, Buffer.from('hello'), 0o640);
    expect((await fx.disk.readWhole(p)).toString()).toBe('hello');
    expect(fx.disk.lstat(p).mode & 0o777).toBe(0o640);
    await fx.disk.writeSynced(p, Buffer.from('hi'), 0o640); // emptied first
    expect((await fx.disk.readWhole(p)).toString()).toBe('hi');
    await expect(
      fx.disk.writeSynced(path.posix.join(fx.root, 'no/x'), Buffer.from('x'), 0o644),
    ).rejects.toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
