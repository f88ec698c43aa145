import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { converge, exists, FsNode } from '../e2e/cluster.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { Prng } from '../sim/prng.js';

/**
 * Jepsen-style: churn on three real nodes, each writing only in its own folder, while nodes are
 * killed with SIGKILL at random (≥ 20 times) and restarted. Afterwards every path holds its
 * writer's last content on every node, no delete came back, and no conflict copy exists (one
 * writer per folder: there is nothing to conflict with). CHURN_SEED replays one run.
 */
const SEED = Number(process.env.CHURN_SEED ?? 7);
const KILLS = Number(process.env.CHURN_KILLS ?? 20);

const t = tempNodes('filesync-churn-');
const nodes = t.nodes;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${d.name}` : d.name;
      if (p === '.filesync') continue;
      if (d.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk('');
  return out;
}

describe(`kill -9 during churn (seed ${SEED})`, () => {
  it(`${KILLS} kills: every writer's last content everywhere, no delete undone, no conflict copy`, async () => {
    const rng = new Prng(SEED);
    for (let i = 1; i <= 3; i++) nodes.push(new FsNode(path.join(t.dir, String(i))));
    const [n1, n2, n3] = nodes as [FsNode, FsNode, FsNode];
    await n1.start();
    await n2.start(['--peers', n1.advertise]);
    await n3.start(['--peers', n2.advertise]);
    const ports = nodes.map((n) => n.advertise.split(':').pop()!);
    const peersOf = (i: number): string[] => [
      '--port',
      ports[i]!,
      '--peers',
      [0, 1, 2]
        .filter((j) => j !== i)
        .map((j) => `127.0.0.1:${ports[j]}`)
        .join(','),
    ];
    /** path → the writer's last content (null: deleted). */
    const want = new Map<string, Buffer | null>();
    for (let i = 0; i < 3; i++) await mkdir(path.join(nodes[i]!.dir, `w${i}`), { recursive: true });

    const op = async (): Promise<void> => {
      const i = rng.int(0, 2);
      const rel = `w${i}/f${rng.int(0, 39)}.bin`;
      const abs = path.join(nodes[i]!.dir, rel);
      if (want.get(rel) && rng.int(0, 4) === 0) {
        await rm(abs, { force: true });
        want.set(rel, null);
        return;
      }
      const size =
        rng.int(0, 19) === 0 ? 1024 * 1024 + rng.int(0, 1024 * 1024 - 1) : rng.int(0, 16 * 1024);
      const body = randomBytes(size);
      await writeFile(abs, body);
      want.set(rel, body);
    };

    let kills = 0;
    while (kills < KILLS) {
      const burst = 5 + rng.int(0, 9);
      for (let k = 0; k < burst; k++) await op();
      const i = rng.int(0, 2);
      const victim = nodes[i]!;
      await new Promise((r) => setTimeout(r, rng.int(0, 300))); // let some of it spread first
      await victim.stop('SIGKILL');
      kills++;
      const offline = rng.int(0, 3);
      for (let k = 0; k < offline; k++) await op(); // edits while it is down
      await victim.start(peersOf(i));
    }
    await converge(nodes, 'the trees after the churn', 120_000);

    const problems: string[] = [];
    for (const n of nodes) {
      for (const [rel, body] of want) {
        const abs = path.join(n.dir, rel);
        if (body === null) {
          if (await exists(abs)) problems.push(`${n.dir}: ${rel} deleted by its writer came back`);
        } else if (!(await readFile(abs).catch(() => Buffer.alloc(0))).equals(body)) {
          problems.push(`${n.dir}: ${rel} is not its writer's last content`);
        }
      }
      for (const f of await filesUnder(n.dir))
        if (f.includes('.sync-conflict-')) problems.push(`${n.dir}: conflict copy ${f}`);
    }
    if (process.env.CHURN_DEBUG && problems.length > 0)
      for (const n of nodes)
        console.log(
          'NODE',
          n.dir,
          n.allStderr
            .split('\n')
            .filter((l) => new RegExp(process.env.CHURN_DEBUG!).test(l))
            .join('\n'),
        );
    expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);
  }, 600_000);
});
