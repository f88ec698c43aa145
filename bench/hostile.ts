/**
 * Honest-edit latency and RSS of a node under a hostile member's floods (npm run bench:hostile).
 * Two honest nodes A and B (B dials A) and an attacker linked to A on the real wire protocol.
 * For each flood: the median time from a write on B until the file is on A, over EDITS edits,
 * and A's RSS after. Floods: none; starvation (300 records whose content is never served);
 * amplification (reset rounds and all-bucket requests in a loop); junk (200 values of ~0.9 MiB
 * that can never be valid). fsync policy: the node's default (every WAL group commit).
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FsNode } from '../test/e2e/cluster.js';
import { EvilPeer } from '../test/helpers/evil-peer.js';
import { junkRecord } from '../test/helpers/records.js';
import { waitFor } from '../test/helpers/tmp.js';
import { envInt, fmt, median, record, withDir } from './util.js';

const EDITS = envInt('EDITS', 7);

type Flood = (evil: EvilPeer, a: FsNode) => () => void;

const floods: Record<string, Flood> = {
  none: () => () => undefined,
  starvation: (evil) => {
    for (let i = 0; i < 300; i += 100)
      evil.push(
        Array.from({ length: 100 }, (_, j) => ({
          key: `__file/junk/${i + j}.bin`,
          value: junkRecord(),
          meta: { node: evil.id, seq: i + j + 1, ts: Date.now() },
        })),
      );
    return () => undefined;
  },
  amplification: (evil) => evil.floodRequests().stop,
  junk: (evil) => {
    for (let i = 0; i < 200; i++)
      evil.push([
        {
          key: `__peer/junk-${i}`,
          value: new Uint8Array(900_000),
          meta: { node: evil.id, seq: i + 1, ts: Date.now() },
        },
      ]);
    return () => undefined;
  },
};

async function rssMiB(n: FsNode): Promise<number> {
  const s = await readFile(`/proc/${n.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(s)?.[1] ?? 0) / 1024;
}

async function run(name: string, flood: Flood): Promise<{ editMs: number; rssMiB: number }> {
  return withDir(async (dir) => {
    const a = new FsNode(path.join(dir, 'a'), ['--no-discover']);
    const b = new FsNode(path.join(dir, 'b'), ['--no-discover']);
    try {
      await a.start();
      await b.start(['--peers', a.advertise]);
      // A state worth asking for: 2000 small files.
      await Promise.all(
        Array.from({ length: 2000 }, (_, i) =>
          writeFile(path.join(a.dir, `f${i}.txt`), `file ${i} `.repeat(10)),
        ),
      );
      await waitFor(
        async () => {
          try {
            await readFile(path.join(b.dir, 'f1999.txt'));
            return true;
          } catch {
            return false;
          }
        },
        'the files on b',
        120_000,
      );
      const evil = await EvilPeer.connect(a.advertise);
      const stop = flood(evil, a);
      const times: number[] = [];
      for (let i = 0; i < EDITS; i++) {
        const body = `honest edit ${i} ${name}`;
        const want = createHash('sha256').update(body).digest('hex');
        const target = path.join(a.dir, `honest-${i}.txt`);
        const t0 = performance.now();
        await writeFile(path.join(b.dir, `honest-${i}.txt`), body);
        await waitFor(
          async () => {
            const got = await readFile(target).catch(() => null);
            return got !== null && createHash('sha256').update(got).digest('hex') === want;
          },
          `honest edit ${i}`,
          120_000,
          5,
        );
        times.push(performance.now() - t0);
      }
      stop();
      const rss = await rssMiB(a);
      evil.close();
      return { editMs: median(times), rssMiB: rss };
    } finally {
      await Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]);
    }
  });
}

const rows: string[] = [
  '| flood | honest edit B→A, median ms | A RSS after, MiB |',
  '| --- | --- | --- |',
];
for (const [name, flood] of Object.entries(floods)) {
  const r = await run(name, flood);
  rows.push(`| ${name} | ${fmt(r.editMs)} | ${fmt(r.rssMiB, 1)} |`);
  await record('hostile.jsonl', { flood: name, edits: EDITS, ...r });
}
console.log(rows.join('\n'));
