import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { compareDirs, type Difference } from '../../src/cli/check.js';
import { waitFor } from '../helpers/tmp.js';

const MAIN = path.join(import.meta.dirname, '../../src/cli/main.ts');
/** The installed command: sets node's thread pool and V8 flags, then runs dist/ or the sources. */
export const BIN = path.join(import.meta.dirname, '../../bin/filesync.cjs');

/** One `filesync` process started by a test: killed only by its pid. */
export class FsNode {
  child: ChildProcess | null = null;
  advertise = '';
  stderr = '';
  /** stderr of every start of this node, for a failure's story. */
  allStderr = '';

  constructor(
    readonly dir: string,
    readonly args: string[] = [],
    /** Start through bin/filesync.cjs, as a user would, instead of the sources through tsx. */
    readonly viaBin = false,
    /** Extra environment (FILESYNC_TEST_CLOCK_OFFSET_MS for a skewed clock). */
    readonly env: NodeJS.ProcessEnv = {},
    /** Run as this uid and gid (root ignores file modes: tests of EACCES run as nobody). */
    readonly uid?: number,
  ) {}

  get dataDir(): string {
    const i = this.args.indexOf('--data-dir');
    return i >= 0 ? this.args[i + 1]! : path.join(this.dir, '.filesync');
  }

  get pid(): number {
    return this.child!.pid!;
  }

  async start(extra: string[] = []): Promise<this> {
    this.stderr = '';
    const child = spawn(
      process.execPath,
      [
        ...(this.viaBin ? [BIN] : ['--import', 'tsx', MAIN]),
        '--dir',
        this.dir,
        '--port',
        '0',
        '--rescan-interval',
        '2s',
        '--log-level',
        'info',
        ...this.args,
        ...extra,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        ...(this.uid !== undefined && { uid: this.uid, gid: this.uid }),
        env: {
          ...process.env,
          FILESYNC_LOG_LEVEL: undefined,
          UV_THREADPOOL_SIZE: undefined,
          ...this.env,
        },
      },
    );
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
      this.allStderr += c;
    });
    this.child = child;
    // The lock file names the address once the node listens.
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`filesync exited early: ${this.stderr}`);
        try {
          const lock = JSON.parse(await readFile(path.join(this.dataDir, 'lock'), 'utf8')) as {
            pid: number;
            advertise: string | null;
          };
          if (lock.pid === child.pid && lock.advertise) this.advertise = lock.advertise;
        } catch {
          /* not yet */
        }
        return this.advertise !== '' && this.stderr.includes('filesync running');
      },
      `node in ${this.dir} to start`,
      30_000,
    );
    return this;
  }

  /** Send a signal to this node's own process. */
  signal(sig: NodeJS.Signals): void {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    try {
      process.kill(c.pid!, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }

  async stop(sig: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    this.signal('SIGCONT');
    this.signal(sig);
    return exited;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Peak RSS of the process so far (VmHWM), in bytes. */
  async peakRssBytes(): Promise<number> {
    const s = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(s);
    return m ? Number(m[1]) * 1024 : 0;
  }
}

export async function converge(
  nodes: FsNode[],
  what = 'directories to converge',
  timeoutMs = 30_000,
): Promise<void> {
  let last: Difference[] = [];
  try {
    await waitFor(
      async () => {
        last = await compareDirs(nodes.map((n) => n.dir)).catch(() => [
          { path: '(scan failed)', sides: {} },
        ]);
        return last.length === 0;
      },
      what,
      timeoutMs,
      100,
    );
  } catch (e) {
    // The nodes' last log lines say why, on the machine where it failed (CI).
    const logs = nodes.map((n) => `--- ${n.dir}\n${n.stderr.slice(-2500)}`).join('\n');
    throw new Error(
      `${(e as Error).message}; still differing: ${JSON.stringify(last.slice(0, 5))}\n${logs}`,
    );
  }
}

export const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** Run a `filesync` subcommand to completion: its exit code, stdout and stderr. */
export function runCli(args: string[]): Promise<{ code: number; stdout: string; out: string }> {
  return new Promise((r) =>
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], (err, stdout, stderr) =>
      r({ code: err ? (err.code as number) : 0, stdout, out: stdout + stderr }),
    ),
  );
}
