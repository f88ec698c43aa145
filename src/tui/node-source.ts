import type { FileEvent, FileSync } from '../filesync/index.js';
import type { PeerStatus, Replica } from '../replica/index.js';
import type { EventModel, PeerModel, StatusSource, TuiModel } from './model.js';

const MAX_EVENTS = 200;

/**
 * The UI's model of a running node, read from the replica and the mirror. Cheap to call ten
 * times a second: the file totals are recounted at most once a second.
 */
export class NodeSource implements StatusSource {
  private readonly events: EventModel[] = [];
  private totals = { files: 0, bytes: 0, atMs: 0 };
  private readonly lastBytes = new Map<
    number,
    { bytesIn: number; bytesOut: number; atMs: number; inRate: number; outRate: number }
  >();
  private readonly wasConnected = new Map<number, boolean>();
  private readonly transferRates = new Map<string, { bytes: number; atMs: number; rate: number }>();

  constructor(
    private readonly replica: Replica,
    private readonly fs: FileSync,
    private readonly dir: string,
  ) {
    fs.on('event', (e: FileEvent) =>
      this.push(e.kind, e.detail ? `${e.path} (${e.detail})` : e.path, e.timeMs),
    );
  }

  push(kind: string, text: string, timeMs = Date.now()): void {
    this.events.push({ timeMs, kind, text });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  snapshot(): TuiModel {
    const now = Date.now();
    const status = this.replica.status();
    const state = this.replica.node.state;
    this.refreshTotals(now);
    const peers = status.peers.map((p) => this.peerModel(p, now, status.node.lastSeq));
    const origins = new Map<number, number>();
    for (const [o, s] of state.acks()) origins.set(o, Math.max(origins.get(o) ?? 0, s));
    for (const acks of state.peerAcks.values())
      for (const [o, s] of acks) origins.set(o, Math.max(origins.get(o) ?? 0, s));
    const transfers = this.transferModels(now);
    const behind = peers.some(
      (p) => p.connected && (p.oursCovered < p.oursTotal || p.theirsCovered < p.theirsTotal),
    );
    const syncState = this.fs.ctx.deletions.held
      ? 'deletions held'
      : peers.every((p) => !p.connected)
        ? 'alone'
        : transfers.length > 0 || behind || !this.fs.idle
          ? 'syncing'
          : 'in sync';
    return {
      header: {
        id: status.node.id,
        device: status.node.device,
        listen: status.node.advertise,
        dir: this.dir,
        files: this.totals.files,
        bytes: this.totals.bytes,
        nextSeq: status.node.nextSeq,
        digest: status.node.digest,
        syncState,
        problems: problemsOf(this.fs.progress),
      },
      peers,
      origins: [...origins.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([node, known]) => ({ node, covered: state.ack(node), known })),
      transfers,
      events: [...this.events],
    };
  }

  /** Files and bytes indexed, counted at most once a second. */
  private refreshTotals(now: number): void {
    if (now - this.totals.atMs <= 1000) return;
    let files = 0;
    let bytes = 0;
    for (const [, e] of this.fs.ctx.index.entries()) {
      if (e.type === 'file') {
        files++;
        bytes += e.size;
      }
    }
    this.totals = { files, bytes, atMs: now };
  }

  /** One peer's row; says when it went up or down, rates over a second or more. */
  private peerModel(p: PeerStatus, now: number, lastSeq: number): PeerModel {
    const state = this.replica.node.state;
    if (this.wasConnected.get(p.id) !== p.connected) {
      if (this.wasConnected.has(p.id) || p.connected)
        this.push(p.connected ? 'peer up' : 'peer down', `node ${p.id}`);
      this.wasConnected.set(p.id, p.connected);
    }
    const b = this.replica.transport.peerBytes(p.id);
    const prev = this.lastBytes.get(p.id);
    let inRate = prev?.inRate ?? 0;
    let outRate = prev?.outRate ?? 0;
    if (b && prev && now - prev.atMs >= 1000) {
      inRate = Math.max(0, ((b.bytesIn - prev.bytesIn) * 1000) / (now - prev.atMs));
      outRate = Math.max(0, ((b.bytesOut - prev.bytesOut) * 1000) / (now - prev.atMs));
    }
    if (b && (!prev || now - prev.atMs >= 1000))
      this.lastBytes.set(p.id, { ...b, atMs: now, inRate, outRate });
    const theirs = state.peerAcks.get(p.id)?.get(p.id) ?? 0;
    return {
      id: p.id,
      address: p.advertise,
      connected: p.connected,
      lastRoundAgeMs: p.lastRoundAgeMs,
      rttMs: p.rttMs,
      oursCovered: p.coversOurs,
      oursTotal: lastSeq,
      theirsCovered: p.weCoverTheirs,
      theirsTotal: Math.max(theirs, p.weCoverTheirs),
      digestAgrees: p.digestAgrees,
      bytesInPerSec: Math.round(inRate),
      bytesOutPerSec: Math.round(outRate),
    };
  }

  /** Downloads in progress and their rates since the last look. */
  private transferModels(now: number): TuiModel['transfers'] {
    return this.fs.transfers.active().map((t) => {
      const prev = this.transferRates.get(t.path);
      const rate =
        prev && now > prev.atMs ? ((t.bytesDone - prev.bytes) * 1000) / (now - prev.atMs) : 0;
      this.transferRates.set(t.path, { bytes: t.bytesDone, atMs: now, rate });
      return {
        path: t.path,
        bytesDone: t.bytesDone,
        size: t.size,
        bytesPerSec: Math.max(0, Math.round(rate)),
      };
    });
  }
}

/** What the header shows in red: paths this node cannot read, applies that keep failing. */
function problemsOf(p: { unreadable: number; parked: number }): string {
  const out: string[] = [];
  if (p.unreadable > 0) out.push(`${p.unreadable} unreadable`);
  if (p.parked > 0) out.push(`${p.parked} failing`);
  return out.join(' · ');
}
