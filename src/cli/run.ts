import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { FileSync, admitFileEntry } from '../filesync/index.js';
import { logger } from '../log/index.js';
import { Replica } from '../replica/index.js';
import { getLogSink, setLogSink, type LogRecord } from '../log/index.js';
import { takeLock } from './lock.js';

const log = logger('cli');

export interface RunOptions {
  dir: string;
  port: number;
  host: string;
  advertise?: string;
  peers: string[];
  dataDir?: string;
  id?: number;
  secret?: string;
  /** Device IDs admitted without the secret. */
  trust: string[];
  insecure: boolean;
  ignore: string[];
  keepDeleted: number;
  maxConflicts: number;
  allowMassDelete: boolean;
  rescanInterval: number;
  /** Terminal UI when stdout is a TTY (false: --no-tui). */
  tui: boolean;
  /** Dial every advertised member (false: --no-discover, only --peers). */
  discover: boolean;
}

/** The default command: one node mirroring `dir`, until SIGINT/SIGTERM. */
export async function run(o: RunOptions): Promise<void> {
  const root = path.resolve(o.dir);
  const dataDir = path.resolve(o.dataDir ?? path.join(root, '.filesync'));
  // With the UI, what is logged while the node starts would stay on the screen above it: held,
  // then its warnings shown in the UI's events (all of it printed if the start fails).
  const tui = o.tui && process.stdout.isTTY === true;
  const held: LogRecord[] = [];
  const print = getLogSink();
  if (tui) setLogSink((r) => void (held.length < 500 && held.push(r)));
  const unhold = (): void => {
    setLogSink(print);
    for (const r of held.splice(0)) print(r);
  };
  try {
    await runNode(o, root, dataDir, tui, held);
  } catch (e) {
    if (tui) unhold();
    throw e;
  }
}

async function runNode(
  o: RunOptions,
  root: string,
  dataDir: string,
  tui: boolean,
  held: LogRecord[],
): Promise<void> {
  // A start refused (port taken, say) leaves nothing behind that it made.
  const made = (await mkdir(dataDir, { recursive: true })) ?? null;
  const lock = await takeLock(dataDir);
  // Lets `filesync forget-peer` (which can read the data dir) reach this node while it runs.
  const controlToken = randomBytes(16).toString('hex');
  let replica: Replica;
  try {
    replica = await startReplica(o, dataDir, controlToken);
  } catch (e) {
    await lock.release();
    if (made !== null) await rm(made, { recursive: true, force: true });
    throw e;
  }
  await lock.update({
    pid: process.pid,
    advertise: replica.transport.advertise,
    token: controlToken,
  });
  const fs = await FileSync.start({
    root,
    dataDir,
    replica,
    ignore: o.ignore,
    keepDeletedMs: o.keepDeleted,
    maxConflicts: o.maxConflicts,
    allowMassDelete: o.allowMassDelete,
    rescanIntervalMs: o.rescanInterval,
  });
  reportEvents(replica, fs);
  log.info('filesync running', {
    node: replica.node.id,
    dir: root,
    listen: replica.transport.advertise,
    peers: o.peers,
  });

  let stopping = false;
  let unmount: (() => void) | null = null;
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      if (stopping) {
        log.warn(`second ${sig}: exiting now`);
        process.exit(130);
      }
      stopping = true;
      log.info(`${sig}: shutting down (flushing the log, writing a snapshot)`);
      void (async () => {
        unmount?.();
        await fs.close();
        await replica.close();
        await lock.release();
        resolve();
      })();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    if (tui) void startTui(replica, fs, root, held, () => stop('quit')).then((u) => (unmount = u));
  });
}

/** The node, its sync and its links, as the options say. */
function startReplica(o: RunOptions, dataDir: string, controlToken: string): Promise<Replica> {
  return Replica.start({
    dataDir,
    ...(o.id !== undefined && { id: o.id }),
    host: o.host,
    port: o.port,
    advertise: o.advertise ?? null,
    peers: o.peers,
    secret: o.secret ?? process.env.FILESYNC_SECRET ?? null,
    trust: o.trust,
    insecure: o.insecure,
    controlToken,
    node: { admit: admitFileEntry, ...testClock() },
    sync: { discover: o.discover },
  });
}

/** The mirror's events go to the log, and its progress to /status. */
function reportEvents(replica: Replica, fs: FileSync): void {
  let conflicts = 0;
  fs.on('event', (ev) => void (ev.kind === 'conflict' && conflicts++));
  replica.statusExtras = () => ({
    transfers: fs.transfers.active(),
    conflicts,
    ...fs.progress,
    startScanMs: fs.startScanMs,
    memory: memoryMiB(),
  });
  const flog = logger('filesync');
  fs.on('event', (ev) => {
    const fields = { path: ev.path, ...(ev.detail !== undefined && { detail: ev.detail }) };
    // Errors and holds are logged where they happen, with their details (and rate-limited
    // there): a second line here made two warnings per failing path per retry.
    if (ev.kind === 'error' || ev.kind === 'held') flog.debug(ev.kind, fields);
    else if (ev.kind === 'conflict' || ev.kind === 'kept-edit') flog.warn(ev.kind, fields);
    else flog.info(ev.kind, fields);
  });
}

/** Render the Ink UI; log lines go to its event list instead of the screen. */
async function startTui(
  replica: Replica,
  fs: FileSync,
  root: string,
  held: LogRecord[],
  quit: () => void,
): Promise<() => void> {
  // Ink (via is-in-ci, read once at import) renders nothing but the last frame when CI or
  // CONTINUOUS_INTEGRATION is set. We already chose the UI on a real TTY, so that guess must
  // not blank the screen: a node started from a CI job inside tmux is still watched by a person.
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  // Ink and React load only here, from one bundled file in a build (src/tui/start.ts says why).
  const [{ startTui: start }, { NodeSource }] = await Promise.all([
    import('../tui/start.js'),
    import('../tui/node-source.js'),
  ]);
  const source = new NodeSource(replica, fs, root);
  const show = (r: LogRecord): void => {
    if (r.level === 'warn' || r.level === 'error')
      source.push(r.level, `[${r.ns}] ${r.msg}`, r.time);
  };
  for (const r of held.splice(0)) show(r);
  setLogSink(show);
  const gc = (globalThis as { gc?: () => void }).gc;
  return start({
    source,
    onQuit: quit,
    idle: () => fs.idle && fs.transfers.active().length === 0,
    ...(gc && { gc: () => gc() }),
  });
}

/** Process memory in MiB (what the bench and `filesync status` show), one decimal. */
function memoryMiB(): Record<string, number> {
  const m = process.memoryUsage();
  const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;
  return {
    rss: mib(m.rss),
    heapTotal: mib(m.heapTotal),
    heapUsed: mib(m.heapUsed),
    external: mib(m.external),
    arrayBuffers: mib(m.arrayBuffers),
  };
}

/**
 * FILESYNC_TEST_CLOCK_OFFSET_MS shifts this node's write clock, for tests of skewed clocks
 * between real processes (libfaketime would shift every clock of the process alike).
 */
function testClock(): { clock?: () => number } {
  const offsetMs = Number(process.env.FILESYNC_TEST_CLOCK_OFFSET_MS ?? 0);
  if (!Number.isFinite(offsetMs) || offsetMs === 0) return {};
  return { clock: () => Date.now() + offsetMs };
}
