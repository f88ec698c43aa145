/**
 * log — one namespaced logger per layer (`store`, `node`, `sync`, …), so `--log-level debug`
 * can be read layer by layer. Output goes to a sink the CLI installs (text or JSON lines);
 * the default sink writes text to stderr.
 *
 * Must not touch: anything but its sink.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface LogRecord {
  readonly time: number;
  readonly level: Exclude<LogLevel, 'silent'>;
  readonly ns: string;
  readonly msg: string;
  readonly fields?: Readonly<Record<string, unknown>>;
}

export type LogSink = (r: LogRecord) => void;

export function isLogLevel(x: string): x is LogLevel {
  return x in RANK;
}

let threshold: LogLevel = (process.env.FILESYNC_LOG_LEVEL as LogLevel | undefined) ?? 'info';
if (!isLogLevel(threshold)) threshold = 'info';

export function formatText(r: LogRecord): string {
  const f = r.fields
    ? Object.entries(r.fields)
        .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join('')
    : '';
  return `${new Date(r.time).toISOString()} ${r.level.toUpperCase().padEnd(5)} [${r.ns}] ${r.msg}${f}`;
}

let sink: LogSink = (r) => process.stderr.write(formatText(r) + '\n');

export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

export function setLogSink(s: LogSink): void {
  sink = s;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
}

export function logger(ns: string): Logger {
  const emit =
    (level: Exclude<LogLevel, 'silent'>) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] < RANK[threshold]) return;
      sink(
        fields
          ? { time: Date.now(), level, ns, msg, fields }
          : { time: Date.now(), level, ns, msg },
      );
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    enabled: (level) => RANK[level] >= RANK[threshold],
  };
}
