import { type Entry, type NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import {
  decodePeerRecord,
  forgottenIdOf,
  isForgotten,
  encodePeerRecord,
  PEER_PREFIX,
  peerIdOf,
  peerKey,
  type PeerRecord,
} from './peer-record.js';
import type { PeerLink, SyncNode, Transport } from './types.js';

const log = logger('sync');
/** Forgotten incarnations warned of at most (one warning each). */
const MAX_FORGOTTEN_WARNED = 1000;

/** What membership needs of the driver. */
export interface MembershipHost {
  node: SyncNode;
  transport: Transport;
  /** Whether a link to `peer` is up now. */
  linked(peer: NodeId): boolean;
}

export interface MembershipOptions {
  advertise: string | null;
  seeds: readonly string[];
  discover: boolean;
}

/**
 * Membership and discovery through `__peer/<id>` records: this node's own record (written
 * again over a forgery), members added and removed as records come and go, forgotten members
 * refused, and advertised addresses dialled.
 */
export class Membership {
  private readonly forgottenWarned = new Set<string>();

  constructor(
    private readonly host: MembershipHost,
    private readonly opts: MembershipOptions,
  ) {}

  /**
   * Advertise this node, reconcile members with the records (a crash may have lost an add or
   * remove) and dial seeds and known addresses. Returns how many addresses were known.
   */
  start(): number {
    const { node, transport } = this.host;
    void this.advertise();
    const known: string[] = [];
    const get = (k: string): Entry | undefined => node.state.get(k);
    for (const e of node.state.entries(PEER_PREFIX)) {
      const id = peerIdOf(e.key);
      if (id === null || id === node.id) continue;
      const rec = e.value && decodePeerRecord(e.value);
      if (rec && isForgotten(get, id, rec.incarnation)) node.removePeer(id).catch(() => undefined);
      else if (rec) {
        this.addMember(id);
        if (rec.device !== undefined) transport.learn?.(id, rec.device);
        if (rec.addr) known.push(rec.addr);
      } else if (e.value === null) node.removePeer(id).catch(() => undefined);
    }
    for (const addr of [...this.opts.seeds, ...(this.opts.discover ? known : [])])
      transport.dial(addr);
    return known.length;
  }

  /** Write our peer record if it is not what we advertise, or above `forgedTs` (a forgery). */
  async advertise(forgedTs?: number): Promise<void> {
    const { node, transport } = this.host;
    const want: PeerRecord = { addr: this.opts.advertise, incarnation: node.incarnation };
    if (transport.device !== undefined) want.device = transport.device;
    const cur = node.state.get(peerKey(node.id));
    const have = cur?.value ? decodePeerRecord(cur.value) : null;
    const same =
      have?.addr === want.addr &&
      have?.incarnation === want.incarnation &&
      have?.device === want.device;
    if (same && (forgedTs === undefined || forgedTs < (cur?.meta.ts ?? 0))) return;
    try {
      await node.put(peerKey(node.id), encodePeerRecord(want), forgedTs);
    } catch (e) {
      log.warn('could not advertise this node', { error: String(e) });
    }
  }

  /** False (and the link hung up) for a forgotten member: its data would bring back the past. */
  admit(link: PeerLink): boolean {
    const { node, transport } = this.host;
    if (!isForgotten((k) => node.state.get(k), link.peer, link.incarnation)) return true;
    if (
      this.forgottenWarned.size < MAX_FORGOTTEN_WARNED &&
      !this.forgottenWarned.has(link.incarnation)
    )
      log.warn('refusing a forgotten member: it must rejoin with a new data dir', {
        peer: link.peer,
        incarnation: link.incarnation,
      });
    this.forgottenWarned.add(link.incarnation);
    transport.hangUp(link.peer);
    return false;
  }

  /** A changed entry: a peer record added, withdrawn or forgotten changes the members. */
  onEntry(entry: Entry): void {
    const { node, transport } = this.host;
    const forgotten = forgottenIdOf(entry.key);
    const id = forgotten ?? peerIdOf(entry.key);
    if (id === null || id === node.id) return;
    const rec = entry.value === null ? null : decodePeerRecord(entry.value);
    if (
      forgotten !== null ||
      rec === null ||
      isForgotten((k) => node.state.get(k), id, rec.incarnation)
    ) {
      // Retired (forget-peer) or withdrawn: stop holding GC back for it, unless it is here now
      // (a forget record for a live peer is a mistake or a forgery: its next round re-adds it).
      if (!this.host.linked(id)) node.removePeer(id).catch(() => undefined);
      return;
    }
    // Everyone advertised is a member: tombstone GC waits for its acks too, so a newcomer that
    // has not reached us yet cannot hand back a version a collected tombstone had superseded.
    this.addMember(id);
    if (rec.device !== undefined) transport.learn?.(id, rec.device);
    if (this.opts.discover && rec.addr && !this.host.linked(id)) transport.dial(rec.addr);
  }

  addMember(id: NodeId): void {
    this.host.node
      .addPeer(id)
      .catch((e: unknown) => log.warn('could not record member', { error: String(e) }));
  }
}
