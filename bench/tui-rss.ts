/**
 * Idle RSS of a node showing its TUI: `npm run bench:tui-rss` (needs tmux). Two nodes on
 * loopback; the first draws its UI in a 120×40 tmux window (a real terminal), the second runs
 * without one. Each round starts both from empty dirs, waits WARMUP_S, then reads the TUI
 * node's /status every SAMPLE_S for SAMPLES reads. A second round restarts the TUI node on the
 * same data dir (its device already made), as every start after the first is. The target is
 * ≤ 80 MiB (issue 23); `--no-tui` is measured the same way for comparison.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePortBase } from '../test/helpers/ports.js';
import { envInt, fmt, getJson, median, record, withDir } from './util.js';

const sh = promisify(execFile);
const WARMUP_S = envInt('WARMUP_S', 30);
const SAMPLE_S = envInt('SAMPLE_S', 10);
const SAMPLES = envInt('SAMPLES', 9);
const BIN = path.join(import.meta.dirname, '..', 'bin', 'filesync.cjs');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitStatus(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await getJson(`http://127.0.0.1:${port}/status`);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`node on ${port} never answered /status`);
      await sleep(200);
    }
  }
}

/** RSS (MiB) of the node on `port`, read SAMPLES times after the warm-up. */
async function sampleRss(port: number): Promise<number[]> {
  await sleep(WARMUP_S * 1000);
  const out: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const s = (await getJson(`http://127.0.0.1:${port}/status`)) as {
      memory: { rss: number };
      peers: unknown[];
    };
    if (s.peers.length !== 1) throw new Error(`expected one peer, saw ${s.peers.length}`);
    out.push(s.memory.rss);
    await sleep(SAMPLE_S * 1000);
  }
  return out;
}

/** One measured node (TUI in tmux, or --no-tui), its peer already running on `peerPort`. */
async function measure(dir: string, port: number, peerPort: number, tui: boolean) {
  const session = `filesync-rss-${process.pid}`;
  const args = [BIN, '--dir', path.join(dir, 'a'), '--port', String(port)];
  args.push('--peers', `127.0.0.1:${peerPort}`, ...(tui ? [] : ['--no-tui']));
  const errFile = path.join(dir, 'tui-node.err');
  const cmd = `exec ${args.map((a) => `'${a}'`).join(' ')} 2>>'${errFile}'`;
  await sh('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '40', cmd]);
  try {
    await waitStatus(port).catch(async (e: Error) => {
      const err = await readFile(errFile, 'utf8').catch(() => '');
      throw new Error(`${e.message}: ${err.trim().split('\n').slice(-3).join(' / ')}`);
    });
    return await sampleRss(port);
  } finally {
    await stopPane(session);
  }
}

/** SIGTERM to the pane's process (the node, which shuts down cleanly), then the session. */
async function stopPane(session: string): Promise<void> {
  const { stdout } = await sh('tmux', ['display', '-p', '-t', session, '#{pane_pid}']);
  const pid = Number(stdout.trim());
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (pid > 0 && alive()) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (pid > 0 && alive() && Date.now() < deadline) await sleep(100);
  await sh('tmux', ['kill-session', '-t', session]).catch(() => {});
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const tui of [true, false]) {
    await withDir(async (dir) => {
      const base = await freePortBase([0, 1]);
      const peer = spawn(
        process.execPath,
        [BIN, '--dir', path.join(dir, 'b'), '--port', `${base + 1}`],
        {
          stdio: 'ignore',
        },
      );
      try {
        await waitStatus(base + 1);
        for (const start of ['first start', 'restart']) {
          const rss = await measure(dir, base, base + 1, tui);
          const label = `${tui ? 'TUI' : '--no-tui'}, ${start}`;
          rows.push(`| ${label} | ${fmt(median(rss), 1)} | ${fmt(Math.max(...rss), 1)} |`);
          await record('tui-rss.jsonl', { tui, start, rss });
        }
      } finally {
        const exited = new Promise((r) => peer.once('exit', r));
        peer.kill('SIGTERM');
        await exited;
      }
    });
  }
  console.log(`idle RSS (MiB) after ${WARMUP_S} s, ${SAMPLES} reads ${SAMPLE_S} s apart`);
  console.log('| node | median | max |\n| --- | --- | --- |\n' + rows.join('\n'));
}

await main();
