import type { NodeId } from '../core/index.js';
import type { WaveNode } from '../node/index.js';
import type { SyncDriver } from '../sync/index.js';
import type { WsTransport } from '../transport/index.js';

export interface PeerStatus {
  id: NodeId;
  connected: boolean;
  advertise: string | null;
  lastRoundAgeMs: number | null;
  rttMs: number | null;
  rounds: number;
  digestAgrees: boolean | null;
  /** Our writes this peer covers (its last reported ack of our origin) against our last seq. */
  coversOurs: number;
  /** This peer's writes we cover. */
  weCoverTheirs: number;
  /** How far ahead of our clock this peer's writes ran at most (its clock's lead; 0 if never). */
  clockAheadMs: number;
}

export interface StatusReport {
  node: {
    id: NodeId;
    /** Its certificate's device ID (what peers pin with --trust). */
    device: string;
    incarnation: string;
    advertise: string;
    nextSeq: number;
    lastSeq: number;
    keys: number;
    tombstones: number;
    digest: string;
    members: NodeId[];
    awaitingSeqRecovery: boolean;
  };
  acks: Record<string, number>;
  peers: PeerStatus[];
  counters: Record<string, number>;
  /** Embedder additions (filesync: `transfers`). */
  [extra: string]: unknown;
}

export function statusReport(
  node: WaveNode,
  driver: SyncDriver,
  transport: WsTransport,
  nowMs: number,
): StatusReport {
  const state = node.state;
  const ids = new Set<NodeId>([...state.members, ...driver.linkedPeers]);
  const peers: PeerStatus[] = [...ids]
    .sort((a, b) => a - b)
    .map((id) => {
      const info = driver.peerInfo(id);
      return {
        id,
        connected: info.connected,
        advertise: info.advertise,
        lastRoundAgeMs: info.lastRoundAt === null ? null : nowMs - info.lastRoundAt,
        rttMs: info.rttMs,
        rounds: info.rounds,
        digestAgrees: info.digestAgrees,
        coversOurs: state.peerAcks.get(id)?.get(node.id) ?? 0,
        weCoverTheirs: state.ack(id),
        clockAheadMs: Math.round(state.aheadMs.get(id) ?? 0),
      };
    });
  return {
    node: {
      id: node.id,
      device: transport.device,
      incarnation: node.incarnation,
      advertise: transport.advertise,
      nextSeq: state.nextSeq,
      lastSeq: state.ack(node.id),
      keys: state.size - state.tombstones,
      tombstones: state.tombstones,
      digest: state.digest,
      members: [...state.members].sort((a, b) => a - b),
      awaitingSeqRecovery: node.awaitingSeqRecovery,
    },
    acks: Object.fromEntries([...state.acks()].map(([k, v]) => [String(k), v])),
    peers,
    counters: {
      ...driver.counters,
      pushed: driver.pushCounters.pushed,
      pushDropped: driver.pushCounters.dropped,
      ...transport.counters,
      walGroupCommits: node.walStats.groupCommits,
      walRecords: node.walStats.records,
    },
  };
}

/** What each counter counts, for /metrics' HELP lines (Prometheus conventions). */
const COUNTER_HELP: Record<string, string> = {
  roundsOk: 'Sync rounds this node started that completed.',
  roundsFailed: 'Sync rounds this node started that failed or timed out.',
  entriesSent: 'Entries sent to peers in rounds and pages.',
  entriesReceived: 'Entries received from peers (rounds, pages, pushes, repairs).',
  confirmed: 'Writes peers confirmed holding.',
  heldMarked: 'Confirmed writes marked as held by a peer (left out of deltas to it).',
  rejected: 'Entries from peers refused by limits, ownership or admission.',
  divergences: 'Digest mismatches that started a repair.',
  repairs: 'Bucket repairs run.',
  resets: 'Full re-exchanges (peer acks forgotten).',
  throttled: 'Peer requests refused for want of that peer’s serve budget.',
  pushed: 'Entries pushed to peers.',
  pushDropped: 'Pushes dropped because a peer’s link was backed up.',
  bytesIn: 'Bytes received on peer connections.',
  bytesOut: 'Bytes sent on peer connections.',
  framesIn: 'Frames received on peer connections.',
  framesOut: 'Frames sent on peer connections.',
  badFrames: 'Frames that failed to decode or validate (the connection was closed).',
  authFailures: 'Peers that failed to prove the cluster secret.',
  dials: 'Connections this node opened to peers (every redial counts).',
  pendingRefused: 'Connections refused because too many were waiting to be admitted.',
  walGroupCommits: 'WAL group commits (one fsync each).',
  walRecords: 'WAL records written.',
};

/** Embedder gauges /metrics knows how to name (filesync's), from the status extras. */
const EXTRA_GAUGES: Record<string, [name: string, help: string]> = {
  indexed: ['filesync_files', 'Paths in the disk index (files, dirs and symlinks on disk).'],
  applyQueued: ['filesync_applies_queued', 'Remote changes waiting to be applied.'],
  applying: ['filesync_applies_running', 'Remote changes being applied now.'],
  parked: ['filesync_applies_failing', 'Paths whose apply failed and waits for a retry.'],
  unreadable: [
    'filesync_paths_unreadable',
    'Paths this node cannot read (not synced, not deleted).',
  ],
  conflicts: ['filesync_conflicts_total', 'Conflict copies made since start.'],
};

/** The same figures as Prometheus text exposition; every series carries the node label. */
export function metricsText(s: StatusReport): string {
  const lines: string[] = [];
  const node = `node="${s.node.id}"`;
  const family = (name: string, type: string, help: string, rows: [string, number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) lines.push(`${name}{${node}${labels}} ${v}`);
  };
  const gauge = (name: string, help: string, v: number): void =>
    family(name, 'gauge', help, [['', v]]);
  gauge('wavekv_keys', 'Live keys held.', s.node.keys);
  gauge('wavekv_tombstones', 'Tombstones held.', s.node.tombstones);
  gauge('wavekv_last_seq', 'Highest seq of this node’s own writes.', s.node.lastSeq);
  gauge(
    'wavekv_peers_connected',
    'Peers with a live link.',
    s.peers.filter((p) => p.connected).length,
  );
  gauge('wavekv_members', 'Known members.', s.node.members.length);
  const perPeer = (f: (p: PeerStatus) => number): [string, number][] =>
    s.peers.map((p) => [`,peer="${p.id}"`, f(p)]);
  family(
    'wavekv_peer_covers_ours',
    'gauge',
    'Highest seq of our writes each peer reports covering.',
    perPeer((p) => p.coversOurs),
  );
  family(
    'wavekv_peer_clock_ahead_ms',
    'gauge',
    'Largest lead of a peer’s write stamps over our clock, in ms.',
    perPeer((p) => p.clockAheadMs),
  );
  for (const [k, v] of Object.entries(s.counters)) {
    const name = `wavekv_${k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())}_total`;
    family(name, 'counter', COUNTER_HELP[k] ?? `Count of ${k}.`, [['', v]]);
  }
  for (const [k, [name, help]] of Object.entries(EXTRA_GAUGES)) {
    const v = s[k];
    if (typeof v === 'number')
      family(name, name.endsWith('_total') ? 'counter' : 'gauge', help, [['', v]]);
  }
  if (Array.isArray(s.transfers))
    gauge('filesync_transfers_running', 'File downloads in progress.', s.transfers.length);
  return lines.join('\n') + '\n';
}
