import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closest, parseDuration } from '../../src/cli/args.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { exists, FsNode, runCli } from './cluster.js';

/** The command line as a new user meets it: every case a real `filesync` process. */
let base: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir: base, cleanup } = await tempDir('filesync-cli-')));
afterAll(() => cleanup());

const MAIN = path.join(import.meta.dirname, '../../src/cli/main.ts');

describe('filesync command line', () => {
  it('prints its version', async () => {
    const pkg = JSON.parse(
      await readFile(path.join(import.meta.dirname, '../../package.json'), 'utf8'),
    ) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('names an unknown command and suggests the near one, in one line', async () => {
    const r = await runCli(['stauts']);
    expect(r.code).toBe(2);
    expect(r.out.trim()).toBe(
      "filesync: unknown command 'stauts' (did you mean 'status'?); see --help",
    );
    expect(closest('chek', ['check', 'status'])).toBe('check');
    expect(closest('zzzzzz', ['check', 'status'])).toBeNull();
  });

  it('wants a unit on every duration', async () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(() => parseDuration('5')).toThrow(/give a unit/);
    const r = await runCli(['--dir', path.join(base, 'nounit'), '--keep-deleted', '5']);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/not a duration: "5" \(give a unit/);
  });

  it('check leaves out what the nodes leave out: each dir’s .filesyncignore and --ignore', async () => {
    const [d1, d2] = [path.join(base, 'ign/1'), path.join(base, 'ign/2')];
    for (const d of [d1, d2]) {
      await mkdir(path.join(d, 'build'), { recursive: true });
      await writeFile(path.join(d, '.filesyncignore'), 'build/\n*.tmp\n');
      await writeFile(path.join(d, 'same.txt'), 'same');
    }
    await writeFile(path.join(d1, 'build/out.o'), 'local build output');
    await writeFile(path.join(d2, 'scratch.tmp'), 'never synced');
    await writeFile(path.join(d1, 'cache.log'), 'left out by --ignore');
    expect((await runCli(['check', '--dirs', `${d1},${d2}`])).code).toBe(1);
    const r = await runCli(['check', '--dirs', `${d1},${d2}`, '--ignore', '*.log']);
    expect(r.code, r.out).toBe(0);
  });

  it('check piped into a reader that stops early ends quietly', async () => {
    const [d1, d2] = [path.join(base, 'pipe/1'), path.join(base, 'pipe/2')];
    await mkdir(d1, { recursive: true });
    await mkdir(d2, { recursive: true });
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => writeFile(path.join(d1, `f${i}`), 'x')),
    );
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'check', '--dirs', `${d1},${d2}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.stdout.once('data', () => child.stdout.destroy()); // `| head -1`
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(err).not.toMatch(/EPIPE|Error|at /);
    expect(code).not.toBeNull();
  });

  it('status finds the node running on --dir, takes --secret, and says what to give when none answers', async () => {
    const dir = path.join(base, 'st');
    const n = new FsNode(dir, ['--secret', 's3cret']);
    try {
      await n.start();
      const ok = await runCli(['status', '--dir', dir, '--secret', 's3cret']);
      expect(ok.code, ok.out).toBe(0);
      expect(ok.stdout).toMatch(/^node \d+ \(device [A-Z2-7-]{53}\) at 127\.0\.0\.1:\d+/);
      const wrong = await runCli(['status', '--dir', dir]);
      expect(wrong.code).toBe(1);
      expect(wrong.out).toMatch(
        /unauthorized: give the cluster secret \(--secret or FILESYNC_SECRET\)/,
      );
    } finally {
      await n.stop();
    }
    const none = await runCli(['status', '--dir', path.join(base, 'nothing-here')]);
    expect(none.code).toBe(1);
    expect(none.out.trim().split('\n')).toHaveLength(1);
    expect(none.out).toMatch(/no node is running on/);
  }, 60_000);

  it('a start refused because the port is taken says so in one line and leaves nothing on disk', async () => {
    const holder = new FsNode(path.join(base, 'holder'));
    try {
      await holder.start();
      const port = holder.advertise.split(':').pop()!;
      const dir = path.join(base, 'refused');
      const r = await runCli(['--dir', dir, '--port', port, '--no-tui']);
      expect(r.code).toBe(1);
      expect(r.out.trim().split('\n').at(-1)).toBe(
        `filesync: port ${port} on 127.0.0.1 is in use (another node?): choose another --port`,
      );
      expect(await exists(dir)).toBe(false);
    } finally {
      await holder.stop();
    }
  }, 60_000);

  it('a normal cluster start prints no warning; an unreachable peer and a secret mismatch are named once, with what to do', async () => {
    const a = new FsNode(path.join(base, 'w/a'));
    const b = new FsNode(path.join(base, 'w/b'));
    const c = new FsNode(path.join(base, 'w/c'), ['--secret', 'only-c-knows']);
    try {
      await a.start();
      await b.start(['--peers', `${a.advertise},127.0.0.1:1`]);
      await waitFor(() => b.stderr.includes('cannot reach 127.0.0.1:1'), 'b to name the dead peer');
      await c.start(['--peers', a.advertise]);
      await waitFor(
        () => (c.stderr.match(/requires a cluster secret/g)?.length ?? 0) > 0,
        'c to name the mismatch',
      );
      // Several redials later: still said once.
      await waitFor(() => (a.stderr.match(/addr=127\.0\.0\.1/g)?.length ?? 0) > 0, 'a to see c');
      type S = { counters: { dials: number } };
      const dials = async (n: FsNode): Promise<number> =>
        (
          (await (
            await fetch(`http://${n.advertise}/status`, {
              headers: { authorization: 'Bearer only-c-knows' },
            })
          ).json()) as S
        ).counters.dials;
      const first = await dials(c);
      await waitFor(
        async () => (await dials(c)) >= first + 3,
        'c to redial a few times',
        30_000,
        100,
      );
      expect(c.stderr.match(/refused the connection.*requires a cluster secret/g)?.length).toBe(1);
      expect(c.stderr).toMatch(
        /addr=127\.0\.0\.1:\d+ .*this node requires a cluster secret and the peer has none: give every node the same --secret/,
      );
      expect(a.stderr).toMatch(
        /refusing peer .*the peer requires a cluster secret and this node has none/,
      );
      expect(b.stderr.match(/cannot reach 127\.0\.0\.1:1;/g)?.length).toBe(1);
      const warnings = (n: FsNode): string[] =>
        n.stderr.split('\n').filter((l) => / WARN /.test(l) && !/127\.0\.0\.1:1;|secret/.test(l));
      expect(warnings(a)).toEqual([]);
      expect(warnings(b)).toEqual([]);
    } finally {
      await Promise.all([a.stop(), b.stop(), c.stop()]);
    }
  }, 60_000);

  it('/metrics labels every series alike, says what each counts, and has the file-level series', async () => {
    const n = new FsNode(path.join(base, 'metrics'));
    try {
      await n.start();
      const text = await (await fetch(`http://${n.advertise}/metrics`)).text();
      const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
      expect(series.length).toBeGreaterThan(20);
      for (const l of series) expect(l, l).toMatch(/^[a-z_]+\{node="\d+"(,peer="\d+")?\} -?\d+$/);
      const helps = text.split('\n').filter((l) => l.startsWith('# HELP'));
      for (const h of helps) expect(h, h).not.toMatch(/Counter \w+\.$|Count of/);
      for (const name of [
        'filesync_files',
        'filesync_applies_failing',
        'filesync_paths_unreadable',
        'filesync_conflicts_total',
        'filesync_transfers_running',
      ])
        expect(text).toMatch(new RegExp(`^${name}\\{node="\\d+"\\} \\d+$`, 'm'));
    } finally {
      await n.stop();
    }
  }, 60_000);
});
