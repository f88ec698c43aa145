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

/** The same figures as Prometheus text exposition. */
export function metricsText(s: StatusReport): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, v: number, labels = ''): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}${labels} ${v}`);
  };
  const counter = (name: string, help: string, v: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`);
  };
  const id = `{node="${s.node.id}"}`;
  gauge('wavekv_keys', 'Live keys held.', s.node.keys, id);
  gauge('wavekv_tombstones', 'Tombstones held.', s.node.tombstones, id);
  gauge('wavekv_last_seq', 'Highest seq of this node’s own writes.', s.node.lastSeq, id);
  gauge(
    'wavekv_peers_connected',
    'Peers with a live link.',
    s.peers.filter((p) => p.connected).length,
    id,
  );
  gauge('wavekv_members', 'Known members.', s.node.members.length, id);
  lines.push(
    '# HELP wavekv_peer_covers_ours Our writes each peer covers.',
    '# TYPE wavekv_peer_covers_ours gauge',
  );
  for (const p of s.peers)
    lines.push(`wavekv_peer_covers_ours{node="${s.node.id}",peer="${p.id}"} ${p.coversOurs}`);
  lines.push(
    '# HELP wavekv_peer_clock_ahead_ms Largest lead of a peer’s write stamps over our clock, in ms.',
    '# TYPE wavekv_peer_clock_ahead_ms gauge',
  );
  for (const p of s.peers)
    lines.push(`wavekv_peer_clock_ahead_ms{node="${s.node.id}",peer="${p.id}"} ${p.clockAheadMs}`);
  for (const [k, v] of Object.entries(s.counters)) {
    counter(
      `wavekv_${k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())}_total`,
      `Counter ${k}.`,
      v,
    );
  }
  return lines.join('\n') + '\n';
}
