import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WaveNode, type NodeOptions } from '../node/index.js';
import { logger } from '../log/index.js';
import {
  admitSyncEntry,
  decodePeerRecord,
  isForgotten,
  peerKey,
  realScheduler,
  SyncDriver,
  type SyncOptions,
} from '../sync/index.js';
import { loadOrCreateDevice, WsTransport, type WsTransportOptions } from '../transport/index.js';
import { metricsText, statusReport, type StatusReport } from './status.js';

const log = logger('replica');

export interface ReplicaOptions {
  dataDir: string;
  id?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7400; 0 picks a free port. */
  port?: number;
  advertise?: string | null;
  /** host:port of members to dial at start. */
  peers?: string[];
  secret?: string | null;
  /** Device IDs admitted without the secret (--trust). */
  trust?: string[];
  insecure?: boolean;
  /**
   * Enables `POST /forget-peer/<id>` for callers that send this token in `x-wavekv-token`
   * (filesync keeps it in its data dir's lock file, readable by the node's owner only). Null or
   * absent: no control routes. The cluster secret, if set, is needed as well, as for every route.
   */
  controlToken?: string | null;
  node?: Omit<NodeOptions, 'dataDir' | 'id'>;
  sync?: Partial<SyncOptions>;
  transport?: Partial<
    Omit<WsTransportOptions, 'node' | 'incarnation' | 'host' | 'port' | 'http' | 'device'>
  >;
}

/** Whether `peer` is a member of `node`'s cluster or advertised there (forgetting leaves a tombstone). */
export function isMember(node: WaveNode, peer: number): boolean {
  if (node.state.members.has(peer)) return true;
  const v = node.getEntry(peerKey(peer))?.value;
  const rec = v ? decodePeerRecord(v) : null;
  return rec !== null && !isForgotten((k) => node.getEntry(k), peer, rec.incarnation);
}

function tokenMatches(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return false;
  const given = Buffer.from(String(req.headers['x-wavekv-token'] ?? ''));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/**
 * /status for a caller that proved neither the secret nor the control token: counts and
 * digests, no file names (the embedder's transfers) and no peer addresses.
 */
function redacted(s: StatusReport): StatusReport {
  const { transfers, ...rest } = s;
  return {
    ...rest,
    ...(Array.isArray(transfers) && { transfers: transfers.length }),
    peers: s.peers.map((p) => ({ ...p, advertise: null })),
    redacted: true,
  };
}

/**
 * A running WaveKV peer: node + sync driver + WebSocket transport, with /status and /metrics.
 * filesync embeds one; tests and benchmarks start several in one process.
 */
export class Replica {
  private constructor(
    readonly node: WaveNode,
    readonly driver: SyncDriver,
    readonly transport: WsTransport,
  ) {}

  static async start(opts: ReplicaOptions): Promise<Replica> {
    const embedderAdmit = opts.node?.admit;
    const node = await WaveNode.open({
      ...opts.node,
      // The sync layer's keys by its own rules (a peer record only from its node), the rest by
      // the embedder's.
      admit: (e) => admitSyncEntry(e) ?? embedderAdmit?.(e) ?? null,
      dataDir: opts.dataDir,
      ...(opts.id !== undefined && { id: opts.id }),
    });
    let replica: Replica | null = null;
    let transport: WsTransport;
    try {
      const device = await loadOrCreateDevice(opts.dataDir);
      transport = await WsTransport.listen({
        ...opts.transport,
        node: node.id,
        incarnation: node.incarnation,
        host: opts.host ?? '127.0.0.1',
        port: opts.port ?? 7400,
        advertise: opts.advertise ?? null,
        device,
        secret: opts.secret ?? null,
        trust: opts.trust ?? [],
        insecure: opts.insecure ?? false,
        maxEntriesPerMessage: node.limits.maxEntriesPerMessage,
        http: (req, res, access) => {
          if (replica === null) return false;
          const path = (req.url ?? '').split('?')[0];
          if (req.method === 'GET' && path === '/status') {
            const full = access.proven || tokenMatches(req, opts.controlToken ?? null);
            res
              .writeHead(200, { 'content-type': 'application/json' })
              .end(JSON.stringify(full ? replica.status() : redacted(replica.status())) + '\n');
            return true;
          }
          if (req.method === 'GET' && path === '/metrics') {
            res
              .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
              .end(metricsText(replica.status()));
            return true;
          }
          const forget = /^\/forget-peer\/(\d{1,10})$/.exec(path ?? '');
          if (req.method === 'POST' && forget !== null && opts.controlToken) {
            void replica.serveForget(Number(forget[1]), opts.controlToken, req, res);
            return true;
          }
          return false;
        },
      });
    } catch (e) {
      await node.close();
      throw e;
    }
    const driver = new SyncDriver(
      node,
      transport,
      realScheduler,
      { ...opts.sync, advertise: transport.advertise, seeds: opts.peers ?? [] },
      node.fresh,
    );
    replica = new Replica(node, driver, transport);
    driver.start();
    log.info('replica started', {
      node: node.id,
      listen: transport.advertise,
      peers: opts.peers ?? [],
    });
    return replica;
  }

  /** What the embedder adds to /status (filesync: its transfers). */
  statusExtras: () => Record<string, unknown> = () => ({});

  status(): StatusReport {
    return {
      ...statusReport(this.node, this.driver, this.transport, Date.now()),
      ...this.statusExtras(),
    };
  }

  /** `POST /forget-peer/<id>`: forget a retired member while this node runs. */
  private async serveForget(
    peer: number,
    token: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const reply = (code: number, body: Record<string, unknown>): void => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
    };
    if (!tokenMatches(req, token)) return reply(403, { error: 'wrong or missing control token' });
    if (peer === this.node.id) return reply(400, { error: 'a node cannot forget itself' });
    if (!isMember(this.node, peer))
      return reply(404, { error: `node ${peer} is not a member here` });
    // A retired member is gone; one still connected would only be added back by its next round.
    if (this.driver.linkedPeers.includes(peer))
      return reply(409, { error: `node ${peer} is connected: stop it first` });
    try {
      await this.driver.forgetPeer(peer);
      log.info('forgot peer', { peer });
      reply(200, { forgot: peer });
    } catch (e) {
      reply(500, { error: String(e) });
    }
  }

  /** Stop syncing, close sockets, flush and snapshot. */
  async close(): Promise<void> {
    await this.driver.stop();
    await this.node.close();
  }
}
