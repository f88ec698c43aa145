import { InvalidArgumentError } from 'commander';
import { parseDeviceId } from '../transport/index.js';

/** "90s", "30m", "1h", "2d", "500ms": the unit is required ("5" alone was 5 ms by surprise). */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s.trim());
  if (!m)
    throw new InvalidArgumentError(
      `not a duration: ${JSON.stringify(s)} (give a unit: 500ms, 90s, 30m, 1h, 2d)`,
    );
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2]!]!;
  return Math.round(n * unit);
}

export function parsePort(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`not a port: ${JSON.stringify(s)}`);
  return n;
}

export function parseId(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isInteger(n) || n < 1 || n > 0xffff_ffff) {
    throw new InvalidArgumentError(`not a node id (1 to 4294967295): ${JSON.stringify(s)}`);
  }
  return n;
}

export function parseCount(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1)
    throw new InvalidArgumentError(`not a positive whole number: ${JSON.stringify(s)}`);
  return n;
}

/** host:port, with [v6] hosts allowed. */
export function parseAddress(s: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s.trim());
  if (!m || Number(m[2]) > 65535)
    throw new InvalidArgumentError(`not host:port: ${JSON.stringify(s)}`);
  return s.trim();
}

/** host:port, or DEVICE-ID@host:port (only that device is accepted there). */
export function parsePeerAddress(s: string): string {
  const at = s.lastIndexOf('@');
  if (at < 0) return parseAddress(s);
  const device = parseDeviceId(s.slice(0, at).trim());
  if (device === null)
    throw new InvalidArgumentError(`not a device ID before the @: ${JSON.stringify(s)}`);
  return `${device}@${parseAddress(s.slice(at + 1))}`;
}

export function parseAddressList(s: string, prev: string[] = []): string[] {
  return [
    ...prev,
    ...s
      .split(',')
      .filter((x) => x.trim() !== '')
      .map(parsePeerAddress),
  ];
}

/** Device IDs, comma-separated or repeated. */
export function parseDeviceList(s: string, prev: string[] = []): string[] {
  const ids = s.split(',').filter((x) => x.trim() !== '');
  return [
    ...prev,
    ...ids.map((x) => {
      const d = parseDeviceId(x.trim());
      if (d === null) throw new InvalidArgumentError(`not a device ID: ${JSON.stringify(x)}`);
      return d;
    }),
  ];
}

export function collect(s: string, prev: string[] = []): string[] {
  return [...prev, s];
}

/** The known word closest to `word` (at most two edits away), for "did you mean". */
export function closest(word: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDist = 3;
  for (const k of known) {
    const d = editDistance(word, k);
    if (d < bestDist) [best, bestDist] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length]!;
}
