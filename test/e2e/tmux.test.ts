import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortBase } from '../helpers/ports.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

const ROOT = path.join(import.meta.dirname, '../..');
const script = (name: string): string => path.join(ROOT, 'scripts', name);
let base: string;
let cleanup: () => Promise<void>;
const session = `filesync-test-${process.pid}`;

function sh(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 120_000, env }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

async function panes(): Promise<Map<string, string>> {
  const { out } = await sh('tmux', ['list-panes', '-t', session, '-F', '#{pane_id} #{pane_title}']);
  const m = new Map<string, string>();
  for (const line of out.trim().split('\n')) {
    const [id, ...title] = line.split(' ');
    if (id) m.set(title.join(' '), id);
  }
  return m;
}

async function capture(id: string, history = false): Promise<string> {
  return (await sh('tmux', ['capture-pane', '-t', id, '-p', ...(history ? ['-S', '-'] : [])])).out;
}

/** Every pane's title and screen, so a failure says what the panes showed. */
async function dumpPanes(): Promise<string> {
  const out: string[] = [];
  for (const [title, id] of await panes()) out.push(`--- ${title}\n${await capture(id)}`);
  return out.join('\n');
}

beforeAll(async () => ({ dir: base, cleanup } = await tempDir('filesync-tmux-')));
afterAll(async () => {
  await sh(script('stop-cluster.sh'), ['--base', base, '--session', session]);
  await cleanup();
});

describe('demo cluster in a real tmux', () => {
  it('starts three chained nodes, survives test-ops, converges, and every pane shows both peers at 100 %', async () => {
    const port = await freePortBase([0, 1, 2]);
    const started = await sh(
      script('test-cluster.sh'),
      [
        '--base',
        base,
        '--session',
        session,
        '--base-port',
        String(port),
        '--detach',
        // CI set, as on a CI runner: the UI must still draw on the panes' TTYs (Ink would not).
      ],
      { ...process.env, CI: 'true' },
    );
    expect(started.code, started.out).toBe(0);
    const nodeTitles = [1, 2, 3].map((i) => `node ${i} :${port + i - 1}`);
    await waitFor(
      async () => {
        const p = await panes();
        for (const t of nodeTitles)
          if (!p.has(t) || !(await capture(p.get(t)!)).includes('filesync node')) return false;
        return true;
      },
      'the three TUIs',
      60_000,
      200,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await dumpPanes()}`);
    });
    const ops = await sh(script('test-ops.sh'), [
      '--base',
      base,
      '--count',
      '100',
      '--seed',
      '3',
      '--interval',
      '10',
    ]);
    expect(ops.code, ops.out).toBe(0);
    await waitFor(
      async () => (await sh(script('check-consistency.sh'), ['--base', base])).code === 0,
      'consistency',
      60_000,
      500,
    );
    const p = await panes();
    await waitFor(
      async () => {
        for (const t of nodeTitles) {
          const screen = await capture(p.get(t)!);
          const full = screen.match(/ours █+ 100% theirs █+ 100%/g) ?? [];
          if (full.length !== 2) return false;
        }
        return true;
      },
      'each node pane to show both peers at 100 %',
      30_000,
      200,
    );
    // What the node logged while it started is not left on the screen above its UI.
    for (const t of nodeTitles) expect(await capture(p.get(t)!, true)).not.toMatch(/ INFO +\[/);
    const pids = await Promise.all(
      [1, 2, 3].map(
        async (i) =>
          (
            JSON.parse(await readFile(path.join(base, String(i), '.filesync/lock'), 'utf8')) as {
              pid: number;
            }
          ).pid,
      ),
    );
    const stopped = await sh(script('stop-cluster.sh'), ['--base', base, '--session', session]);
    expect(stopped.out).toContain('stopped 3 node(s)');
    const gone = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    // Exit is asynchronous even after the script saw it (tmux reaps its panes' processes).
    await waitFor(() => pids.every(gone), 'the three nodes to be gone', 10_000, 50);
  }, 180_000);

  it('refuses to start on a taken port (exit 1, the port named), and stop says when nothing ran', async () => {
    const port = await freePortBase([0, 1, 2]);
    const server = createServer().listen(port + 1, '127.0.0.1');
    await once(server, 'listening');
    try {
      const other = `${session}-taken`;
      const r = await sh(script('test-cluster.sh'), [
        '--base',
        path.join(base, 'taken'),
        '--session',
        other,
        '--base-port',
        String(port),
        '--detach',
      ]);
      expect(r.code).toBe(1);
      expect(r.out.trim()).toBe(
        `test-cluster.sh: port ${port + 1} is in use: pick other ports with --base-port`,
      );
      const stop = await sh(script('stop-cluster.sh'), [
        '--base',
        path.join(base, 'taken'),
        '--session',
        other,
      ]);
      expect(stop.code).toBe(0);
      expect(stop.out).toMatch(/nothing was running/);
    } finally {
      server.close();
    }
  });
});
