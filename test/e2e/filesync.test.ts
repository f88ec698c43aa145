import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  mkdir,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
  appendFile,
} from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { converge, exists, FsNode, runCli } from './cluster.js';

let base: string;
let cleanup: () => Promise<void>;
const nodes: FsNode[] = [];

beforeAll(async () => ({ dir: base, cleanup } = await tempDir('filesync-e2e-')));
afterAll(async () => {
  for (const n of nodes) await n.stop('SIGKILL').catch(() => undefined);
  await cleanup();
});

async function chain(names: string[], args: string[] = []): Promise<FsNode[]> {
  const out: FsNode[] = [];
  for (const name of names) {
    const n = new FsNode(path.join(base, name), args);
    nodes.push(n);
    await n.start(out.length ? ['--peers', out[out.length - 1]!.advertise] : []);
    out.push(n);
  }
  return out;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('filesync end to end (real processes on loopback)', () => {
  it('a 3-node chain converges for creates, edits, appends, deletes, renames, dirs, symlinks, modes, binary and non-ASCII names', async () => {
    const [a, b, c] = await chain(['c1/a', 'c1/b', 'c1/c']);
    await mkdir(path.join(a!.dir, 'x/y/z'), { recursive: true });
    await mkdir(path.join(b!.dir, 'empty/dir'), { recursive: true });
    await writeFile(path.join(a!.dir, 'x/y/z/deep.txt'), 'deep');
    await writeFile(path.join(a!.dir, 'edit.txt'), 'v1');
    await writeFile(path.join(c!.dir, 'ünïcødé ñame.txt'), 'unicode');
    await writeFile(path.join(b!.dir, 'blob.bin'), randomBytes(300_000));
    await writeFile(path.join(a!.dir, 'script.sh'), '#!/bin/sh\n');
    await chmod(path.join(a!.dir, 'script.sh'), 0o750);
    await writeFile(path.join(a!.dir, 'shared.txt'), 'group-writable');
    await chmod(path.join(a!.dir, 'shared.txt'), 0o666); // more than the default umask lets through
    await symlink('edit.txt', path.join(a!.dir, 'link'));
    await converge([a!, b!, c!], 'creates');

    await writeFile(path.join(c!.dir, 'edit.txt'), 'v2 from c');
    await appendFile(path.join(a!.dir, 'x/y/z/deep.txt'), ' and more');
    await rename(path.join(b!.dir, 'blob.bin'), path.join(b!.dir, 'x/moved.bin'));
    await rm(path.join(a!.dir, 'ünïcødé ñame.txt'));
    await chmod(path.join(b!.dir, 'script.sh'), 0o700);
    await converge([a!, b!, c!], 'edits, appends, renames, deletes, modes');
    expect(await readFile(path.join(a!.dir, 'edit.txt'), 'utf8')).toBe('v2 from c');
    expect((await stat(path.join(c!.dir, 'script.sh'))).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(c!.dir, 'shared.txt'))).mode & 0o777).toBe(0o666);
    expect(await readlink(path.join(c!.dir, 'link'))).toBe('edit.txt');
    expect(await exists(path.join(c!.dir, 'empty/dir'))).toBe(true);
    expect(await exists(path.join(c!.dir, 'ünïcødé ñame.txt'))).toBe(false);

    // One 64 MiB file: it streams, so it never shows up in any node's RSS.
    const big = randomBytes(64 * 1024 * 1024);
    await writeFile(path.join(a!.dir, 'big.bin'), big);
    await converge([a!, b!, c!], 'the 64 MiB file', 90_000);
    expect(sha(await readFile(path.join(c!.dir, 'big.bin')))).toBe(sha(big));
    for (const n of [a!, b!, c!]) expect(await n.peakRssBytes()).toBeLessThan(250 * 1024 * 1024);

    // rm -rf of a whole subtree.
    await rm(path.join(b!.dir, 'x'), { recursive: true });
    await converge([a!, b!, c!], 'a subtree removal');
    expect(await exists(path.join(a!.dir, 'x'))).toBe(false);
  }, 240_000);

  it('concurrent edits keep both contents with exactly one conflict copy, same name everywhere; edit beats an unseen delete', async () => {
    const [a, b, c] = await chain(['c2/a', 'c2/b', 'c2/c']);
    await writeFile(path.join(a!.dir, 'doc.txt'), 'base');
    await writeFile(path.join(a!.dir, 'keep.txt'), 'base');
    await converge([a!, b!, c!], 'the base versions');
    // Node c is frozen while both sides change the same files: the changes are concurrent.
    c!.signal('SIGSTOP');
    await writeFile(path.join(a!.dir, 'doc.txt'), 'edit from a');
    await rm(path.join(a!.dir, 'keep.txt'));
    await writeFile(path.join(c!.dir, 'doc.txt'), 'edit from c');
    await writeFile(path.join(c!.dir, 'keep.txt'), 'edited on c');
    await waitFor(
      async () => !(await exists(path.join(b!.dir, 'keep.txt'))),
      'a’s delete to reach b',
    );
    c!.signal('SIGCONT');
    await converge([a!, b!, c!], 'after the conflict');
    for (const n of [a!, b!, c!]) {
      const names = (await readdir(n.dir)).filter((f) => f.startsWith('doc'));
      expect(names).toHaveLength(2);
      const contents = await Promise.all(names.map((f) => readFile(path.join(n.dir, f), 'utf8')));
      expect(contents.sort()).toEqual(['edit from a', 'edit from c']);
      expect(names.find((f) => f !== 'doc.txt')).toMatch(/^doc\.sync-conflict-\d+-\d+\.txt$/);
      expect(await readFile(path.join(n.dir, 'keep.txt'), 'utf8')).toBe('edited on c');
    }
  }, 120_000);

  it('changes made while a node was down are picked up at its start; an emptied root deletes nothing on peers', async () => {
    const [a, b] = await chain(['c3/a', 'c3/b']);
    for (let i = 0; i < 5; i++) await writeFile(path.join(a!.dir, `f${i}.txt`), `file ${i}`);
    await converge([a!, b!], 'the first files');
    expect(await b!.stop()).toBe(0);
    await writeFile(path.join(b!.dir, 'offline-new.txt'), 'made offline');
    await writeFile(path.join(b!.dir, 'f1.txt'), 'edited offline');
    await rm(path.join(b!.dir, 'f2.txt'));
    await b!.start();
    await converge([a!, b!], 'the offline changes');
    expect(await readFile(path.join(a!.dir, 'f1.txt'), 'utf8')).toBe('edited offline');
    expect(await exists(path.join(a!.dir, 'f2.txt'))).toBe(false);

    for (const f of await readdir(a!.dir))
      if (f !== '.filesync') await rm(path.join(a!.dir, f), { recursive: true });
    await waitFor(
      () => a!.stderr.includes('NOT propagating deletions'),
      'the mass-delete guard to speak',
    );
    // Removing the root altogether is held back the same way.
    await a!.stop();
    await a!.start();
    await rm(a!.dir, { recursive: true });
    await waitFor(
      () => a!.stderr.includes('NOT propagating deletions'),
      'the guard after the root vanished',
    );
    // Give a wrong propagation every chance to happen, then check nothing was lost on b.
    await b!.stop();
    expect((await readdir(b!.dir)).filter((f) => f !== '.filesync').sort()).toEqual([
      'f0.txt',
      'f1.txt',
      'f3.txt',
      'f4.txt',
      'offline-new.txt',
    ]);
  }, 120_000);

  it('ignore rules hold both ways; a symlinked parent is never written through', async () => {
    const [a, b] = await chain(['c4/a', 'c4/b']);
    await writeFile(path.join(a!.dir, '.filesyncignore'), '*.tmp\nbuild/\n');
    await waitFor(() => exists(path.join(b!.dir, '.filesyncignore')), 'the ignore file to sync');
    await writeFile(path.join(a!.dir, 'a.tmp'), 'ignored');
    await writeFile(path.join(b!.dir, 'b.tmp'), 'ignored');
    await mkdir(path.join(b!.dir, 'build'));
    await writeFile(path.join(b!.dir, 'build/out.o'), 'ignored');
    await writeFile(path.join(a!.dir, 'marker.txt'), 'synced');
    await writeFile(path.join(b!.dir, 'marker2.txt'), 'synced');
    await waitFor(
      async () =>
        (await exists(path.join(b!.dir, 'marker.txt'))) &&
        (await exists(path.join(a!.dir, 'marker2.txt'))),
      'markers',
    );
    expect(await exists(path.join(b!.dir, 'a.tmp'))).toBe(false);
    expect(await exists(path.join(a!.dir, 'b.tmp'))).toBe(false);
    expect(await exists(path.join(a!.dir, 'build'))).toBe(false);

    // b's `sub` becomes a symlink to a folder outside while a writes into sub/.
    await mkdir(path.join(a!.dir, 'sub'));
    await waitFor(() => exists(path.join(b!.dir, 'sub')), 'sub to reach b');
    const outside = path.join(base, 'c4/outside');
    await mkdir(outside);
    b!.signal('SIGSTOP');
    await rm(path.join(b!.dir, 'sub'), { recursive: true });
    await symlink(outside, path.join(b!.dir, 'sub'));
    await writeFile(path.join(a!.dir, 'sub/secret.txt'), 'must not escape');
    await waitFor(
      () => /published path=sub\/secret\.txt/.test(a!.stderr),
      'a to publish sub/secret.txt while b is frozen',
    );
    b!.signal('SIGCONT');
    await waitFor(
      () => b!.stderr.includes('a parent directory is a symlink'),
      'b to refuse sub/secret.txt',
      15_000,
    );
    expect(await readdir(outside)).toEqual([]);
  }, 120_000);

  it('check exits 0 when identical, 1 with the differences listed, 2 on bad usage', async () => {
    const runCheck = (args: string[]): ReturnType<typeof runCli> => runCli(['check', ...args]);
    const d1 = path.join(base, 'chk/1');
    const d2 = path.join(base, 'chk/2');
    await mkdir(d1, { recursive: true });
    await mkdir(d2, { recursive: true });
    await writeFile(path.join(d1, 'same'), 'x');
    await writeFile(path.join(d2, 'same'), 'x');
    expect((await runCheck(['--dirs', `${d1},${d2}`])).code).toBe(0);
    await writeFile(path.join(d2, 'same'), 'y');
    const diff = await runCheck(['--dirs', `${d1},${d2}`, '--json']);
    expect(diff.code).toBe(1);
    expect(JSON.parse(diff.out).differences[0].path).toBe('same');
    expect((await runCheck(['--dirs', d1])).code).toBe(2);
    expect((await runCheck([])).code).toBe(2);
  }, 60_000);
});
