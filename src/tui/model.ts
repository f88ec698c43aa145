/** What the terminal UI shows, as plain data: the components render it, sources produce it. */

export interface HeaderModel {
  id: number;
  /** Its device ID, for the other nodes' --trust. */
  device?: string;
  listen: string;
  dir: string;
  files: number;
  bytes: number;
  nextSeq: number;
  digest: string;
  /** "in sync", "syncing", "alone", "deletions held" … */
  syncState: string;
  /** Paths that need the user: "3 unreadable · 2 failing", or empty. */
  problems?: string;
}

export interface PeerModel {
  id: number;
  address: string | null;
  connected: boolean;
  lastRoundAgeMs: number | null;
  rttMs: number | null;
  /** Our writes this peer covers, and our last seq. */
  oursCovered: number;
  oursTotal: number;
  /** Their writes we cover, and their last seq as far as we know. */
  theirsCovered: number;
  theirsTotal: number;
  digestAgrees: boolean | null;
  bytesInPerSec: number;
  bytesOutPerSec: number;
}

export interface OriginModel {
  node: number;
  covered: number;
  known: number;
}

export interface TransferModel {
  path: string;
  bytesDone: number;
  size: number;
  bytesPerSec: number;
}

export interface EventModel {
  timeMs: number;
  kind: string;
  text: string;
}

export interface TuiModel {
  header: HeaderModel;
  peers: PeerModel[];
  origins: OriginModel[];
  transfers: TransferModel[];
  events: EventModel[];
}

/** Where the UI gets its model: the running node, or a fake one in tests. */
export interface StatusSource {
  snapshot(): TuiModel;
}

export function percent(done: number, total: number): number {
  if (total <= 0) return 100;
  return Math.max(0, Math.min(100, Math.floor((100 * done) / total)));
}

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
