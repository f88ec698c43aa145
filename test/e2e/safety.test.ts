import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/filesync/index.js';
import { Replica } from '../../src/replica/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { converge, exists, FsNode, runCli } from './cluster.js';

let base: string;
let cleanup: () => Promise<void>;
const nodes: FsNode[] = [];
beforeAll(async () => ({ dir: base, cleanup } = await tempDir('filesync-safety-')));
afterAll(async () => {
  for (const n of nodes) await n.stop('SIGKILL').catch(() => undefined);
  await cleanup();
});

describe('filesync safety (real processes)', () => {
  it('SIGKILL mid-transfer: no partial file is ever visible, and the transfer completes after restart', async () => {
    const a = new FsNode(path.join(base, 'k/a'));
    const b = new FsNode(path.join(base, 'k/b'));
    nodes.push(a, b);
    await a.start();
    await b.start(['--peers', a.advertise]);
    const big = randomBytes(128 * 1024 * 1024);
    const want = createHash('sha256').update(big).digest('hex');
    await writeFile(path.join(a.dir, 'big.bin'), big);
    const target = path.join(b.dir, 'big.bin');
    const tmpDir = path.join(b.dataDir, 'tmp');
    // Catch b while the download is under way in tmp/, never at the target path.
    await waitFor(
      async () => {
        if (await exists(target))
          throw new Error('the file appeared before the kill: make it larger');
        const names = await readdir(tmpDir).catch(() => [] as string[]);
        for (const n of names) if ((await stat(path.join(tmpDir, n))).size > 0) return true;
        return false;
      },
      'a download in progress on b',
      60_000,
      5,
    );
    await b.stop('SIGKILL');
    expect(await exists(target)).toBe(false);
    await b.start();
    await converge([a, b], 'the interrupted transfer to complete', 90_000);
    expect(
      createHash('sha256')
        .update(await readFile(target))
        .digest('hex'),
    ).toBe(want);
  }, 180_000);

  it('a record with a traversal path injected through the library API is refused by the peers', async () => {
    const a = new FsNode(path.join(base, 't/a'));
    nodes.push(a);
    await a.start();
    // A rogue embedder: WaveKV with no admission hook, writing unsafe file keys.
    const rogue = await Replica.start({
      dataDir: path.join(base, 't/rogue'),
      port: 0,
      peers: [a.advertise],
    });
    try {
      const rec = encodeRecord({
        type: 'file',
        size: 4,
        mtimeMs: Date.now(),
        mode: 0o644,
        hash: createHash('sha256').update('evil').digest('hex'),
        blocks: [],
        target: null,
        prev: null,
        history: [],
      });
      for (const k of [
        '__file/../escape.txt',
        '__file/a/../../escape2.txt',
        '__file//abs.txt',
        '__file/.filesync/node',
      ]) {
        await rogue.node.put(k, rec);
      }
      await waitFor(async () => {
        const s = (await (await fetch(`http://${a.advertise}/status`)).json()) as {
          counters: { rejected: number };
        };
        return s.counters.rejected >= 4;
      }, 'node a to reject the unsafe records');
      expect(await exists(path.join(base, 't/escape.txt'))).toBe(false);
      expect(await exists(path.join(base, 'escape2.txt'))).toBe(false);
      expect(a.stderr).toMatch(/entry rejected.*unsafe path/);
    } finally {
      await rogue.close();
    }
  }, 60_000);

  it('an exposed address without a secret is refused in one line, before anything is written', async () => {
    const dir = path.join(base, 'exposed');
    const out = await runCli(['--dir', dir, '--host', '0.0.0.0', '--port', '0', '--no-tui']);
    expect(out.code).toBe(2);
    expect(out.out.trim().split('\n')).toEqual([
      expect.stringMatching(/refusing to listen on 0\.0\.0\.0 without a cluster secret/),
    ]);
    expect(await exists(dir)).toBe(false);
  });

  it('the filesync command (bin/filesync.cjs) sets UV_THREADPOOL_SIZE before node starts its pool', async () => {
    const n = new FsNode(path.join(base, 'bin'), [], true);
    nodes.push(n);
    await n.start(['--no-tui']);
    // libuv starts every pool thread at once, at the first call that needs one (the start-up's
    // file reads have). Main thread + 64 pool threads + V8's and node's own: more than 64.
    // An ES-module entry started the pool while loading itself: 11 threads in all.
    const threads = (await readdir(`/proc/${n.pid}/task`)).length;
    expect(threads).toBeGreaterThan(64);
    expect(await n.stop()).toBe(0);
  });

  it('status answers from a running node', async () => {
    const a = new FsNode(path.join(base, 's/a'));
    nodes.push(a);
    await a.start();
    const out = await runCli(['status', '--peer', a.advertise, '--json']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout).node.advertise).toBe(a.advertise);
    // How far the mirror is: what the disk index holds, what waits to be applied.
    type Progress = { indexed: number; applyQueued: number; applying: number };
    const progress = async (): Promise<Progress> =>
      (await (await fetch(`http://${a.advertise}/status`)).json()) as Progress;
    await writeFile(path.join(a.dir, 'one.txt'), '1');
    await waitFor(async () => (await progress()).indexed === 1, 'one.txt to be indexed');
    expect(await progress()).toMatchObject({ applyQueued: 0, applying: 0 });
  }, 60_000);

  it('forget-peer removes a retired member, through the running node or with it stopped', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new FsNode(path.join(base, `f/${n}`)));
    nodes.push(a!, b!, c!);
    await a!.start();
    await b!.start(['--peers', a!.advertise]);
    await c!.start(['--peers', a!.advertise]);
    type Status = { node: { id: number; members: number[] } };
    const status = async (n: FsNode): Promise<Status> =>
      (await (await fetch(`http://${n.advertise}/status`)).json()) as Status;
    const [bId, cId] = [(await status(b!)).node.id, (await status(c!)).node.id];
    await waitFor(async () => {
      const m = (await status(a!)).node.members;
      return m.includes(bId) && m.includes(cId);
    }, 'b and c to become members of a');
    const forget = (id: number): ReturnType<typeof runCli> =>
      runCli(['forget-peer', String(id), '--dir', a!.dir]);

    // Running: the control route wants the token only the data dir's owner can read.
    const bare = await fetch(`http://${a!.advertise}/forget-peer/${bId}`, { method: 'POST' });
    expect(bare.status).toBe(403);
    const connected = await forget(bId);
    expect(connected.code).toBe(1);
    expect(connected.out).toMatch(new RegExp(`node ${bId} is connected: stop it first`));
    await b!.stop();
    await waitFor(
      async () => {
        const r = await forget(bId);
        if (r.code === 0) expect(r.out).toMatch(/told the running node/);
        return r.code === 0;
      },
      'a to forget b once b is gone',
      20_000,
      200,
    );
    expect((await status(a!)).node.members).not.toContain(bId);
    expect((await forget(bId)).out).toMatch(new RegExp(`node ${bId} is not a member here`));

    // Stopped: the command opens the data dir itself.
    await c!.stop();
    await a!.stop();
    const done = await forget(cId);
    expect(done.code, done.out).toBe(0);
    await a!.start();
    expect((await status(a!)).node.members).not.toContain(cId);
  }, 90_000);
});
