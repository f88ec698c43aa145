import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { getJson } from '../util.js';

const run = promisify(execFile);

/** Three nodes chained A–B–C (no A–C link) on loopback, for one system under test. */
export interface BenchCluster {
  readonly name: string;
  readonly dirs: [string, string, string];
  /** Paths at the root the comparison leaves out (the system's own files). */
  readonly exclude: string[];
  pids(): number[];
  stop(): Promise<void>;
  /** How long A's start scan took, if the system reports it. */
  startScanMs?(): Promise<number | null>;
  /** Sync entries each node has received so far (A, B, C), if the system reports them. */
  entriesReceived?(): Promise<number[]>;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = once(c, 'exit');
      process.kill(c.pid!, 'SIGTERM');
      const timer = setTimeout(
        () => c.exitCode === null && c.signalCode === null && process.kill(c.pid!, 'SIGKILL'),
        15_000,
      );
      await exited;
      clearTimeout(timer);
    }),
  );
}

async function waitUntil(
  cond: () => Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const BIN = path.join(import.meta.dirname, '../../bin/filesync.cjs');
/** The node flags on bin/filesync.cjs's shebang line: the nodes run as `filesync` would. */
const BIN_NODE_FLAGS = readFileSync(BIN, 'utf8')
  .split('\n', 1)[0]!
  .split(' ')
  .filter((a) => a.startsWith('--'));
/** A cluster started on a large tree (s) may scan for minutes before it is ready. */
const START_TIMEOUT_MS = 900_000;

/** Run `ready`; if it fails, stop the processes already started before passing the error on. */
async function orStop(children: ChildProcess[], ready: () => Promise<void>): Promise<void> {
  try {
    await ready();
  } catch (e) {
    await stopAll(children);
    throw e;
  }
}

/** filesync: each node its own process, chained by --peers with discovery off. */
export async function startFilesync(base: string, port: number): Promise<BenchCluster> {
  const dirs = ['A', 'B', 'C'].map((n) => path.join(base, `fs-${n}`)) as [string, string, string];
  const children: ChildProcess[] = [];
  for (let i = 0; i < 3; i++) {
    await mkdir(dirs[i]!, { recursive: true });
    // BENCH_NODE_ARGS: extra node flags for the nodes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const args = [
      ...BIN_NODE_FLAGS,
      ...nodeArgs,
      BIN,
      '--dir',
      dirs[i]!,
      '--port',
      String(port + i),
      '--no-tui',
      '--no-discover',
      '--allow-mass-delete',
      '--log-level',
      process.env.BENCH_LOG_LEVEL ?? 'warn',
    ];
    if (i > 0) args.push('--peers', `127.0.0.1:${port + i - 1}`);
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(c);
    await orStop(children, () =>
      waitUntil(async () => {
        try {
          const lock = JSON.parse(
            await readFile(path.join(dirs[i]!, '.filesync/lock'), 'utf8'),
          ) as {
            pid: number;
            advertise: string | null;
          };
          return lock.pid === c.pid && lock.advertise !== null;
        } catch {
          return false;
        }
      }, `filesync node ${i} to listen`),
    );
  }
  // Chain up: B sees A and C.
  await orStop(children, () =>
    waitUntil(
      async () => {
        try {
          const s = (await getJson(`http://127.0.0.1:${port + 1}/status`)) as {
            peers: { connected: boolean }[];
          };
          return s.peers.filter((p) => p.connected).length === 2;
        } catch {
          return false;
        }
      },
      'the filesync chain',
      START_TIMEOUT_MS,
    ),
  );
  return {
    name: 'filesync',
    dirs,
    exclude: ['.filesync'],
    pids: () => children.map((c) => c.pid!),
    stop: () => stopAll(children),
    startScanMs: async () => {
      const s = (await getJson(`http://127.0.0.1:${port}/status`)) as {
        startScanMs?: number | null;
      };
      return s.startScanMs ?? null;
    },
    entriesReceived: () =>
      Promise.all(
        [0, 1, 2].map(async (i) => {
          const s = (await getJson(`http://127.0.0.1:${port + i}/status`)) as {
            counters?: { entriesReceived?: number };
          };
          return s.counters?.entriesReceived ?? 0;
        }),
      ),
  };
}

interface StNode {
  home: string;
  dir: string;
  id: string;
  apiKey: string;
  gui: number;
  listen: number;
}

/** Syncthing (Debian package), its own temp config per node, tuned as the issue says. */
export async function startSyncthing(base: string, port: number): Promise<BenchCluster> {
  const nodes: StNode[] = [];
  for (let i = 0; i < 3; i++) {
    const home = path.join(base, `st-home-${i}`);
    const dir = path.join(base, `st-${'ABC'[i]}`);
    await mkdir(path.join(dir, '.stfolder'), { recursive: true });
    await run('syncthing', [
      'generate',
      `--home=${home}`,
      '--no-default-folder',
      '--skip-port-probing',
    ]);
    const xml = await readFile(path.join(home, 'config.xml'), 'utf8');
    const id = /<device id="([A-Z0-9-]+)"/.exec(xml)![1]!;
    const apiKey = /<apikey>([^<]+)<\/apikey>/.exec(xml)![1]!;
    nodes.push({ home, dir, id, apiKey, gui: port + 10 + i, listen: port + 20 + i });
  }
  const peersOf = (i: number): number[] => (i === 0 ? [1] : i === 1 ? [0, 2] : [1]);
  for (let i = 0; i < 3; i++) {
    const n = nodes[i]!;
    let xml = await readFile(path.join(n.home, 'config.xml'), 'utf8');
    const set = (tag: string, value: string): void => {
      xml = xml.replace(new RegExp(`<${tag}>[^<]*</${tag}>`, 'g'), `<${tag}>${value}</${tag}>`);
    };
    xml = xml.replace(/(<gui[^>]*>\s*<address>)[^<]*(<\/address>)/, `$1127.0.0.1:${n.gui}$2`);
    set('listenAddress', `tcp://127.0.0.1:${n.listen}`);
    for (const t of [
      'globalAnnounceEnabled',
      'localAnnounceEnabled',
      'relaysEnabled',
      'natEnabled',
      'crashReportingEnabled',
      'startBrowser',
    ]) {
      set(t, 'false');
    }
    set('urAccepted', '-1');
    set('autoUpgradeIntervalH', '0');
    const peers = peersOf(i).map((j) => nodes[j]!);
    const folder =
      `<folder id="bench" label="bench" path="${n.dir}" type="sendreceive" rescanIntervalS="5" fsWatcherEnabled="true" fsWatcherDelayS="1" ignorePerms="false" autoNormalize="true">` +
      [n, ...peers].map((p) => `<device id="${p.id}" introducedBy=""></device>`).join('') +
      `<minDiskFree unit="%">0</minDiskFree></folder>`;
    const devices = peers
      .map(
        (p) =>
          `<device id="${p.id}" name="n${p.listen}" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy=""><address>tcp://127.0.0.1:${p.listen}</address><paused>false</paused><autoAcceptFolders>false</autoAcceptFolders></device>`,
      )
      .join('');
    xml = xml.replace('</configuration>', `${folder}${devices}</configuration>`);
    await writeFile(path.join(n.home, 'config.xml'), xml);
  }
  const children = nodes.map((n) =>
    spawn(
      'syncthing',
      ['serve', `--home=${n.home}`, '--no-browser', '--no-restart', '--no-upgrade'],
      {
        stdio: 'ignore',
        env: { ...process.env, STNOUPGRADE: '1', STNORESTART: '1' },
      },
    ),
  );
  const api = async (n: StNode, p: string): Promise<unknown> =>
    getJson(`http://127.0.0.1:${n.gui}${p}`, { 'X-API-Key': n.apiKey });
  await orStop(children, async () => {
    await waitUntil(
      async () => {
        try {
          const b = (await api(nodes[1]!, '/rest/system/connections')) as {
            connections: Record<string, { connected: boolean }>;
          };
          return Object.values(b.connections).filter((c) => c.connected).length === 2;
        } catch {
          return false;
        }
      },
      'the syncthing chain',
      START_TIMEOUT_MS,
    );
    // Folders idle before the first workload.
    await waitUntil(
      async () => {
        try {
          const states = await Promise.all(
            nodes.map((n) => api(n, '/rest/db/status?folder=bench') as Promise<{ state: string }>),
          );
          return states.every((s) => s.state === 'idle');
        } catch {
          return false;
        }
      },
      'syncthing folders to be idle',
      START_TIMEOUT_MS,
    );
  });
  return {
    name: 'syncthing',
    dirs: nodes.map((n) => n.dir) as [string, string, string],
    exclude: ['.stfolder', '.stversions'],
    pids: () => children.map((c) => c.pid!),
    stop: () => stopAll(children),
  };
}
