import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/core/index.js';
import { encodeRecord, type FileRecord } from '../../src/filesync/record.js';
import { EvilPeer } from '../helpers/evil-peer.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { converge, FsNode } from './cluster.js';

/** A hostile member against the mirror: real nodes, the real wire protocol. */
let base: string;
let cleanup: () => Promise<void>;
const nodes: FsNode[] = [];
const peers: EvilPeer[] = [];

beforeEach(async () => ({ dir: base, cleanup } = await tempDir('filesync-hostile-fs-')));
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await Promise.all(nodes.splice(0).map((n) => n.stop('SIGKILL')));
  await cleanup();
});

interface Status {
  node: { id: number };
  peers: { id: number; connected: boolean }[];
  parked: number;
}
const status = async (n: FsNode): Promise<Status> =>
  (await (await fetch(`http://${n.advertise}/status`)).json()) as Status;

export const record = (r: Partial<FileRecord>): Uint8Array =>
  encodeRecord({
    type: 'file',
    size: 100,
    mtimeMs: Date.now(),
    mode: 0o644,
    hash: randomBytes(32).toString('hex'),
    blocks: [],
    target: null,
    prev: null,
    history: [],
    ...r,
  });

async function pair(): Promise<{ a: FsNode; b: FsNode; evil: EvilPeer }> {
  const a = new FsNode(path.join(base, 'a'), ['--no-discover']);
  const b = new FsNode(path.join(base, 'b'), ['--no-discover']);
  nodes.push(a, b);
  await a.start();
  await b.start(['--peers', a.advertise]);
  const bId = (await status(b)).node.id;
  await waitFor(
    async () => (await status(a)).peers.some((p) => p.id === bId && p.connected),
    'b to link with a',
  );
  const evil = await EvilPeer.connect(a.advertise);
  peers.push(evil);
  return { a, b, evil };
}

describe('a hostile member against the mirror', () => {
  it('cannot starve honest changes with records whose content it never serves', async () => {
    const { a, b, evil } = await pair();
    const junk: Entry[] = Array.from({ length: 300 }, (_, i) => ({
      key: `__file/junk/${i}.bin`,
      value: record({}),
      meta: { node: evil.id, seq: i + 1, ts: Date.now() },
    }));
    for (let i = 0; i < junk.length; i += 100) evil.push(junk.slice(i, i + 100));
    // Its block requests are never answered (the attacker holds them): every apply slot of a
    // would be waiting on it.
    await evil.expectFrame((f) => f.t === 'block' || f.t === 'blocks', 'a to ask the attacker');
    for (let i = 0; i < 3; i++) {
      await writeFile(path.join(b.dir, `honest-${i}.txt`), `honest edit ${i}`);
      // Normally a tenth of a second; before the junk was parked, a minute.
      await converge([a, b], `honest edit ${i} to reach a while junk waits`, 20_000);
    }
    // The junk is parked (tried again after growing pauses), not retried every second.
    await waitFor(
      async () => (await status(a)).parked >= 64,
      'the first junk paths parked',
      60_000,
    );
    const warned = a.stderr
      .split('\n')
      .filter((l) => l.includes('junk/7.bin"') || l.includes('junk/7.bin ')).length;
    expect(warned).toBeLessThanOrEqual(4);
  }, 120_000);
});
