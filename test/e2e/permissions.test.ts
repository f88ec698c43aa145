import { chmod, chown, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { converge, exists, FsNode } from './cluster.js';

/**
 * A path the node may not read is unknown, never deleted. Root reads everything whatever the
 * modes say, so under root the nodes run as nobody.
 */
const NOBODY = 65534;
const asUser = process.getuid?.() === 0 ? NOBODY : undefined;
let base: string;
let cleanup: () => Promise<void>;
const nodes: FsNode[] = [];
beforeAll(async () => {
  ({ dir: base, cleanup } = await tempDir('filesync-perm-'));
  await chmod(base, 0o755);
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  await cleanup();
});

async function ownDir(p: string): Promise<string> {
  await mkdir(p, { recursive: true });
  if (asUser !== undefined) await chown(p, asUser, asUser);
  return p;
}

type Status = { unreadable: number };
const status = async (n: FsNode): Promise<Status> =>
  (await (await fetch(`http://${n.advertise}/status`)).json()) as Status;

describe('permissions', () => {
  it('a directory or file the node cannot read is reported, and deleted nowhere', async () => {
    const a = new FsNode(await ownDir(path.join(base, 'a')), [], false, {}, asUser);
    const b = new FsNode(await ownDir(path.join(base, 'b')), [], false, {}, asUser);
    nodes.push(a, b);
    await a.start();
    await b.start(['--peers', a.advertise]);
    await mkdir(path.join(a.dir, 'sub'));
    await writeFile(path.join(a.dir, 'sub/x.txt'), 'x');
    await writeFile(path.join(a.dir, 'sub/y.txt'), 'y');
    await writeFile(path.join(a.dir, 'top.txt'), 'top');
    if (asUser !== undefined)
      for (const p of ['sub', 'sub/x.txt', 'sub/y.txt', 'top.txt'])
        await chown(path.join(a.dir, p), asUser, asUser);
    await converge([a, b], 'the files on b');

    await chmod(path.join(b.dir, 'sub'), 0o000);
    await chmod(path.join(b.dir, 'top.txt'), 0o000);
    // Either b published a delete (a loses the files) or it counts them unreadable.
    await waitFor(
      async () => a.stderr.includes('deleted path=sub/') || (await status(b)).unreadable >= 2,
      'b to see the unreadable paths',
      20_000,
    );
    // A change b makes after its scans saw the unreadable paths: once it is on a, a has seen
    // everything b published about them (nothing).
    await writeFile(path.join(b.dir, 'marker.txt'), 'later');
    if (asUser !== undefined) await chown(path.join(b.dir, 'marker.txt'), asUser, asUser);
    await waitFor(() => exists(path.join(a.dir, 'marker.txt')), 'the marker on a', 20_000);
    for (const p of ['sub/x.txt', 'sub/y.txt', 'top.txt'])
      expect(await exists(path.join(a.dir, p)), p).toBe(true);
    expect(a.stderr).not.toMatch(/deleted path=(sub|top)/);
    // Nor is a's copy locked: a directory's owner keeps rwx on every node.
    expect((await stat(path.join(a.dir, 'sub'))).mode & 0o700).toBe(0o700);
    await waitFor(
      async () => (await status(b)).unreadable >= 2,
      'b to count both unreadable',
      20_000,
    );
    expect(b.stderr).toMatch(
      /cannot read; not published, not deleted anywhere path=sub error=EACCES/,
    );
    expect(b.stderr.match(/cannot read;.*path=sub /g)?.length ?? 0).toBe(1); // once, not per rescan

    await chmod(path.join(b.dir, 'sub'), 0o755);
    await chmod(path.join(b.dir, 'top.txt'), 0o644);
    await waitFor(async () => (await status(b)).unreadable === 0, 'b to read them again', 20_000);
    await converge([a, b], 'a and b identical again');
  }, 120_000);
});
