import { closeSync, lstatSync, openSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { realClock } from './clock.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { WaveNode } from '../node/index.js';
import type { Ctx } from './context.js';
import { kvFile } from './context.js';
import { realDisk } from './disk.js';
import { DiskIndex } from './disk-index.js';
import { sha256 } from './hasher.js';
import { HeldDeletions } from './held-deletions.js';
import { UnreadablePaths } from './localfs.js';
import { RealParents } from './safe-fs.js';
import { IgnoreRules } from './ignore.js';
import { Scanner } from './scanner.js';
import { permBits } from './stat.js';
import type { Transfer } from './transfer.js';
import type { Trash } from './trash.js';

let dir: string;
let cleanup: () => Promise<void>;
let node: WaveNode;
let published: string[];
let scanner: Scanner;
let ctx: Ctx;
let root: string;
/** While set, the scanner's quiet-period waits last until it settles. */
let hold: Promise<void> | null;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('scanner-'));
  root = path.join(dir, 'root');
  await mkdir(root);
  node = await WaveNode.open({ dataDir: path.join(dir, 'data') });
  published = [];
  const ignore = new IgnoreRules(root, []);
  await ignore.reload();
  ctx = {
    root,
    disk: realDisk,
    clock: realClock,
    node,
    index: new DiskIndex(path.join(dir, 'index')),
    landing: new Map(),
    ignore,
    parents: new RealParents(root, realDisk),
    unreadable: new UnreadablePaths(() => undefined),
    trash: {} as Trash, // not used by a local publish
    transfer: { keepPublished: () => undefined } as unknown as Transfer,
    maxConflicts: 10,
    allowMassDelete: false,
    deletions: new HeldDeletions(path.join(dir, 'deletions-held'), false),
    indexMayLag: false,
    lagging: null,
    event: (kind, p) => kind === 'published' && published.push(p),
    withPath: (_rel, fn) => fn(),
  };
  hold = null;
  scanner = new Scanner(ctx, (ms) => hold ?? new Promise((r) => setTimeout(r, ms)));
});
afterEach(async () => {
  await node.close();
  await cleanup();
});

describe('scanner', () => {
  it('does not publish a file caught between its truncation and its write', async () => {
    const abs = path.join(root, 'doc.txt');
    await writeFile(abs, 'first version');
    await scanner.check('doc.txt');
    expect(published).toEqual(['doc.txt']);
    // A writer truncates the file and is slow to write it (a save under load)...
    const fd = openSync(abs, 'w');
    let release!: () => void;
    hold = new Promise((r) => (release = r)); // the writer is slower than any quiet period
    const checking = scanner.check('doc.txt'); // ...while a watcher hint is already acted on.
    // One turn later the check has stat'ed and hashed the empty file (no I/O in between) and,
    // without the quiet period, decided to publish it.
    await new Promise((r) => setImmediate(r));
    writeSync(fd, 'second version');
    closeSync(fd);
    release();
    await checking;
    expect(published).toEqual(['doc.txt', 'doc.txt']); // one new version, not an empty one too
    expect(kvFile(node, 'doc.txt')?.record.hash).toBe(sha256(Buffer.from('second version')));
  });

  it("takes a file still landing (renamed in, its directory's fsync pending) for indexed", async () => {
    const abs = path.join(root, 'recv.txt');
    await writeFile(abs, 'received');
    const st = lstatSync(abs);
    expect(scanner.isIndexed('recv.txt', st)).toBe(false); // not in the index yet
    ctx.landing.set('recv.txt', {
      type: 'file',
      size: st.size,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      mode: permBits(st.mode),
      hash: sha256(Buffer.from('received')),
      blocks: [],
      target: null,
      version: [1, 1],
      ancestors: [],
    });
    expect(scanner.isIndexed('recv.txt', st)).toBe(true); // the echo of our own rename
    await writeFile(abs, 'edited locally right after');
    expect(scanner.isIndexed('recv.txt', lstatSync(abs))).toBe(false);
  });
});
