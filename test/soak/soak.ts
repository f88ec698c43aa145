/**
 * Soak: churn on all three nodes of a chain while nodes are SIGKILLed and restarted, or frozen
 * with SIGSTOP and thawed; then everything heals and the trees must converge.
 * `npm run soak -- --minutes N [--seed S]`; a short run is part of `npm test`.
 */
import { appendFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Prng } from '../sim/prng.js';
import { converge, FsNode } from '../e2e/cluster.js';

export interface SoakReport {
  ops: number;
  kills: number;
  freezes: number;
  convergeMs: number;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
    for (const d of names) {
      const p = rel ? `${rel}/${d.name}` : d.name;
      if (p === '.filesync') continue;
      if (d.isDirectory()) await walk(p);
      else if (d.isFile()) out.push(p);
    }
  };
  await walk('');
  return out;
}

export async function soak(
  base: string,
  durationMs: number,
  seed: number,
  log: (line: string) => void = () => undefined,
): Promise<SoakReport> {
  const rng = new Prng(seed);
  const nodes = [
    new FsNode(path.join(base, '1')),
    new FsNode(path.join(base, '2')),
    new FsNode(path.join(base, '3')),
  ];
  await nodes[0]!.start();
  await nodes[1]!.start(['--peers', nodes[0]!.advertise]);
  await nodes[2]!.start(['--peers', nodes[1]!.advertise]);
  // A node is restarted as an operator would, pointed at the members: each restart listens on
  // a new port here, so the addresses it stored may all be stale, and a node whose every
  // stored address is stale never finds the cluster again.
  const seedsFor = (node: FsNode): string[] => [
    '--peers',
    nodes
      .filter((m) => m !== node)
      .map((m) => m.advertise)
      .join(','),
  ];
  const down = new Set<FsNode>();
  const frozen = new Set<FsNode>();
  const report: SoakReport = { ops: 0, kills: 0, freezes: 0, convergeMs: 0 };
  try {
    const end = Date.now() + durationMs;
    let n = 0;
    while (Date.now() < end) {
      const node = rng.pick(nodes);
      const files = await listFiles(node.dir);
      const op = rng.int(0, 99);
      const name = `d${rng.int(0, 3)}/f${n++ % 40}.txt`;
      try {
        if (op < 35 || files.length === 0) {
          await mkdir(path.join(node.dir, path.dirname(name)), { recursive: true });
          await writeFile(
            path.join(node.dir, name),
            `${seed}:${n}:${'x'.repeat(rng.int(0, 5000))}`,
          );
        } else if (op < 55) {
          await appendFile(path.join(node.dir, rng.pick(files)), `+${n}`);
        } else if (op < 70) {
          await rm(path.join(node.dir, rng.pick(files)), { force: true });
        } else if (op < 80) {
          const to = `d${rng.int(0, 3)}/r${n}.bin`;
          await mkdir(path.join(node.dir, path.dirname(to)), { recursive: true });
          await rename(path.join(node.dir, rng.pick(files)), path.join(node.dir, to));
        } else if (op < 90) {
          await writeFile(
            path.join(node.dir, rng.pick(files)),
            Buffer.from(Array.from({ length: 2000 }, () => rng.int(0, 255))),
          );
        } else if (op < 95 && !down.has(node) && down.size === 0) {
          report.kills++;
          log(`kill ${node.dir}`);
          down.add(node);
          await node.stop('SIGKILL');
          const seeds = seedsFor(node); // the members' addresses now, before any restarts
          setTimeout(
            () => void node.start(seeds).then(() => down.delete(node)),
            rng.int(300, 1500),
          );
        } else if (!down.has(node) && !frozen.has(node)) {
          report.freezes++;
          frozen.add(node);
          node.signal('SIGSTOP');
          setTimeout(
            () => {
              node.signal('SIGCONT');
              frozen.delete(node);
            },
            rng.int(200, 1200),
          );
        }
        report.ops++;
      } catch {
        /* a racing rename or delete: part of the churn */
      }
      await new Promise((r) => setTimeout(r, rng.int(5, 40)));
    }
    // Heal: everyone thawed and running, then wait for convergence.
    for (const node of nodes) node.signal('SIGCONT');
    const t0 = Date.now();
    while (down.size > 0) await new Promise((r) => setTimeout(r, 50));
    for (const node of nodes) if (!node.running) await node.start(seedsFor(node));
    try {
      await converge(nodes, 'the soaked trees to converge', 120_000);
    } catch (e) {
      // What each node was connected to, and its log, say why (kept beside the data).
      for (const [i, node] of nodes.entries()) {
        const status = await fetch(`http://${node.advertise}/status`)
          .then((r) => r.text())
          .catch((err: unknown) => String(err));
        await writeFile(path.join(base, `node${i + 1}.log`), `${node.stderr}\n${status}\n`);
      }
      throw e;
    }
    report.convergeMs = Date.now() - t0;
    return report;
  } finally {
    for (const node of nodes) await node.stop('SIGKILL').catch(() => undefined);
  }
}

if (process.argv[1]?.endsWith('soak.ts')) {
  const args = process.argv.slice(2);
  const get = (k: string, d: number): number => {
    const i = args.indexOf(k);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const { mkdtemp } = await import('node:fs/promises');
  const os = await import('node:os');
  const base = await mkdtemp(path.join(os.tmpdir(), 'filesync-soak-'));
  try {
    const r = await soak(base, get('--minutes', 1) * 60_000, get('--seed', Date.now() % 1e9), (s) =>
      console.log(s),
    );
    console.log(
      `soak ok: ${r.ops} ops, ${r.kills} kills, ${r.freezes} freezes, converged in ${r.convergeMs} ms`,
    );
  } catch (e) {
    console.error(`soak FAILED: ${(e as Error).message} (data kept in ${base})`);
    process.exit(1);
  }
  await rm(base, { recursive: true, force: true });
}
