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

// C0 and C1 controls, DEL and the line/paragraph separators: what can end or forge a line.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

/** A value as it appears in a text log line: names from peers or disks cannot forge a line. */
export function textValue(v: unknown): string {
  if (typeof v === 'string' && !CONTROL.test(v)) return v;
  // Rounded for reading: elapsedMs=16.68, not 16.682972000000007 (JSON lines keep them exact).
  if (typeof v === 'number' && !Number.isInteger(v)) return String(Number(v.toPrecision(4)));
  const s = JSON.stringify(v) ?? String(v);
  return s.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function formatText(r: LogRecord): string {
  const f = r.fields
    ? Object.entries(r.fields)
        .map(([k, v]) => ` ${k}=${textValue(v)}`)
        .join('')
    : '';
  const msg = CONTROL.test(r.msg) ? textValue(r.msg) : r.msg;
  return `${new Date(r.time).toISOString()} ${r.level.toUpperCase().padEnd(5)} [${r.ns}] ${msg}${f}`;
}

/**
 * Says whether a message under `key` may be logged now: at most once per `intervalMs` per key,
 * with the count of those held back meanwhile. Keys are bounded (the oldest are dropped).
 */
export class LogLimiter {
  private readonly last = new Map<string, { atMs: number; held: number }>();

  constructor(
    private readonly intervalMs = 60_000,
    private readonly maxKeys = 1024,
  ) {}

  /** null: hold this one back; a number: log it, saying how many were held back before it. */
  allow(key: string, nowMs: number): number | null {
    const cur = this.last.get(key);
    if (cur !== undefined && nowMs - cur.atMs < this.intervalMs) {
      cur.held++;
      return null;
    }
    const held = cur?.held ?? 0;
    this.last.delete(key);
    if (this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value!);
    this.last.set(key, { atMs: nowMs, held: 0 });
    return held;
  }
}

let sink: LogSink = (r) => process.stderr.write(formatText(r) + '\n');

export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

export function getLogSink(): LogSink {
  return sink;
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
