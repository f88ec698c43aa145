/**
 * cli — the `filesync` command (commander): run (default), check, status, id, forget-peer.
 * Bad input of any kind gets a one-line error and a non-zero exit, never a stack trace.
 *
 * Owns: argument parsing, log output format, signals, exit codes. Must not touch: sync or
 * store internals (it goes through Replica and FileSync).
 */
import { Command, CommanderError, Option } from 'commander';
import { formatText, isLogLevel, setLogLevel, setLogSink, type LogLevel } from '../log/index.js';
import { createRequire } from 'node:module';
import {
  closest,
  collect,
  parseAddress,
  parseAddressList,
  parseCount,
  parseDeviceList,
  parseDuration,
  parseId,
  parsePort,
} from './args.js';
import {
  checkCommand,
  CommandError,
  forgetPeerCommand,
  idCommand,
  statusCommand,
} from './commands.js';
import { isLoopback } from '../transport/index.js';
import { run } from './run.js';

/** Exit codes: 0 ok, 1 failure (or `check` found differences), 2 usage. */
class UsageError extends Error {}

function setupLogging(level: string, format: string): void {
  if (!isLogLevel(level))
    throw new UsageError(`--log-level must be one of debug, info, warn, error`);
  if (format !== 'text' && format !== 'json')
    throw new UsageError(`--log-format must be text or json`);
  setLogLevel(level as LogLevel);
  setLogSink((r) =>
    process.stderr.write((format === 'json' ? JSON.stringify(r) : formatText(r)) + '\n'),
  );
}

const COMMANDS = ['check', 'status', 'id', 'forget-peer', 'help'];
const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

// `check … | head`: a reader that goes away is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const program = new Command()
  .name('filesync')
  .description('Keep a directory identical across equal peers.')
  .version(version, '--version', 'print the version')
  .argument('[command]', 'check, status, id or forget-peer (none: run a node)')
  .exitOverride()
  .enablePositionalOptions()
  .configureOutput({
    writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `filesync: ${s.slice(7)}` : s),
  })
  .showHelpAfterError(false);

program
  .option('--dir <path>', 'the directory to keep in sync (created if missing)')
  .addOption(
    new Option('--port <n>', 'port to listen on (0: any free one)')
      .default(7400)
      .argParser(parsePort),
  )
  .option('--host <addr>', 'address to bind', '127.0.0.1')
  .option('--advertise <host:port>', 'address peers should dial (default: host:port)', parseAddress)
  .option(
    '--peers <[ID@]host:port,...>',
    'members to connect to at start (any one is enough); ID@ accepts only that device there',
    parseAddressList,
    [],
  )
  .option('--data-dir <path>', 'where WaveKV keeps its files (default: <dir>/.filesync)')
  .option('--id <n>', 'node id (default: random on first start)', parseId)
  .option('--secret <s>', 'cluster secret (or FILESYNC_SECRET): peers must prove it')
  .option(
    '--trust <device-id,...>',
    'devices admitted without the secret (see `filesync id`)',
    parseDeviceList,
    [],
  )
  .option(
    '--insecure',
    'admit any device on a non-loopback address (encrypted, not authenticated)',
    false,
  )
  .option('--ignore <glob>', 'ignore pattern, gitignore syntax (repeatable)', collect, [])
  .addOption(
    new Option('--keep-deleted <dur>', 'how long replaced or deleted files stay in trash')
      .default(3_600_000, '1h')
      .argParser(parseDuration),
  )
  .addOption(
    new Option('--max-conflicts <n>', 'conflict copies kept per path')
      .default(10)
      .argParser(parseCount),
  )
  .option(
    '--allow-mass-delete',
    'propagate deletions even if the directory vanished or was emptied',
    false,
  )
  .addOption(
    new Option('--rescan-interval <dur>', 'full rescan period')
      .default(60_000, '60s')
      .argParser(parseDuration),
  )
  .option('--no-tui', 'plain log lines instead of the terminal UI')
  .option('--no-discover', 'dial only --peers, not every advertised member (benchmarks of chains)')
  .option('--log-level <level>', 'debug, info, warn or error', 'info')
  .option('--log-format <fmt>', 'text or json', 'text')
  .action(
    async (
      command: string | undefined,
      o: Parameters<typeof run>[0] & { logLevel: string; logFormat: string },
    ) => {
      if (command !== undefined) {
        const near = closest(command, COMMANDS);
        throw new UsageError(
          `unknown command '${command}'${near ? ` (did you mean '${near}'?)` : ''}; see --help`,
        );
      }
      if (o.dir === undefined) throw new UsageError('--dir <path> is required (see --help)');
      // The transport refuses this too, but only once the data dir exists: refused input must
      // leave nothing behind.
      const pinned = o.trust.length > 0 || o.peers.some((p) => p.includes('@'));
      const secret = o.secret ?? process.env.FILESYNC_SECRET;
      if (!isLoopback(o.host) && !secret && !pinned && !o.insecure)
        throw new UsageError(
          `refusing to listen on ${o.host} without a cluster secret or a trusted device: set --secret (or FILESYNC_SECRET) or --trust, or pass --insecure`,
        );
      setupLogging(o.logLevel, o.logFormat);
      await run(o);
    },
  );

program
  .command('check')
  .description('say whether directories are identical (exit 0) or not (exit 1, differences listed)')
  .requiredOption('--dirs <a,b,...>', 'directories to compare')
  .option('--json', 'machine-readable output', false)
  .option('--ignore-conflicts', 'leave conflict copies out of the comparison', false)
  .option('--ignore <glob>', 'also leave out what a node given this --ignore would', collect, [])
  .action(
    async (o: { dirs: string; json: boolean; ignoreConflicts: boolean; ignore: string[] }) => {
      setLogLevel('warn');
      process.exitCode = await checkCommand(o);
    },
  );

program
  .command('status')
  .description("print a running node's status")
  .option(
    '--peer <host:port>',
    'node to ask (default: the node of --dir, else 127.0.0.1:7400)',
    parseAddress,
  )
  .option('--dir <path>', 'ask the node running on this synced directory')
  .option('--data-dir <path>', 'its data dir (default: <dir>/.filesync)')
  .option('--secret <s>', 'the cluster secret (or FILESYNC_SECRET)')
  .option('--json', 'raw JSON', false)
  .action(
    async (o: {
      peer?: string;
      dir?: string;
      dataDir?: string;
      secret?: string;
      json: boolean;
    }) => {
      await statusCommand(o);
    },
  );

program
  .command('id')
  .description("print this node's device ID (made at the data dir's first start)")
  .requiredOption('--dir <path>', 'the synced directory of this node')
  .option('--data-dir <path>', 'its data dir (default: <dir>/.filesync)')
  .action(async (o: { dir: string; dataDir?: string }) => {
    await idCommand(o);
  });

program
  .command('forget-peer')
  .description('remove a retired member so it no longer holds tombstone GC back')
  .argument('<id>', 'node id to forget', parseId)
  .requiredOption('--dir <path>', 'the synced directory of this node')
  .option('--data-dir <path>', 'its data dir (default: <dir>/.filesync)')
  .action(async (id: number, o: { dir: string; dataDir?: string }) => {
    await forgetPeerCommand(id, o);
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Commander already printed its one line (or the help).
    process.exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2);
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`filesync: ${msg.split('\n')[0]}\n`);
  process.exit(e instanceof CommandError ? e.exitCode : e instanceof UsageError ? 2 : 1);
}
