import { EventEmitter } from 'node:events';
import {
  DEFAULT_LIMITS,
  State,
  type AdmissionHook,
  type Entry,
  type NodeId,
  type StateOp,
} from '../../src/core/index.js';
import type { ChangeLike, MergeOutcome, SyncNode } from '../../src/sync/index.js';

/** The part of a simulated node that survives a crash: its durable log (the fake disk). */
export interface FakeDisk {
  readonly id: NodeId;
  readonly incarnation: string;
  durable: StateOp[];
  /** Persisted "waiting to recover own seq" flag of a rebuilt node. */
  awaitSeq: boolean;
  /** As WaveNode's identity keeps it: a rebuilt node's past seqs (see State.pastSeqBelow). */
  pastSeqBelow?: number;
}

export interface FakeNodeHooks {
  /** Schedule the fake fsync of a group commit after a random delay on the virtual clock. */
  scheduleSync(fn: () => void): void;
  now(): number;
  /** Told about every op when it becomes durable (the world checks seq uniqueness there). */
  onDurable(node: NodeId, op: StateOp): void;
  /** Optional admission hook, as an embedder would pass to WaveNode. */
  admit?: AdmissionHook;
}

/**
 * A small fake of WaveNode for unit tests of the sync layer: the real core State, with a log
 * whose records become durable when the test's fsync hook fires (visible only once durable,
 * like WaveNode). The simulator does not use it: it runs the real WaveNode and store.
 */
export class FakeNode extends EventEmitter<{ change: [ChangeLike] }> implements SyncNode {
  readonly state: State;
  readonly limits = DEFAULT_LIMITS;
  private pending: { op: StateOp; source: 'local' | NodeId; resolve: () => void }[] = [];
  private syncScheduled = false;
  private readonly pendingTs = new Map<string, number>();
  private gate: (() => void) | null = null;
  private gateP: Promise<void> | null = null;
  dead = false;

  constructor(
    readonly disk: FakeDisk,
    private readonly hooks: FakeNodeHooks,
  ) {
    super();
    this.state = new State(disk.id);
    this.state.ownAcks = !disk.awaitSeq;
    this.state.pastSeqBelow = disk.pastSeqBelow ?? 1;
    const now = hooks.now();
    for (const op of disk.durable) this.state.apply(op, now);
    if (disk.awaitSeq) this.gateP = new Promise((r) => (this.gate = r));
  }

  get id(): NodeId {
    return this.disk.id;
  }
  get incarnation(): string {
    return this.disk.incarnation;
  }
  get awaitingSeqRecovery(): boolean {
    return this.gate !== null;
  }
  seqRecovered(): void {
    const g = this.gate;
    this.gate = null;
    this.state.ownAcks = true;
    this.state.pastSeqBelow = this.disk.pastSeqBelow = this.state.nextSeq;
    this.disk.awaitSeq = false;
    g?.();
  }

  private append(op: StateOp, source: 'local' | NodeId): Promise<void> {
    if (this.dead) return new Promise(() => undefined); // a dead process never hears back
    return new Promise((resolve) => {
      this.pending.push({ op, source, resolve });
      if (!this.syncScheduled) {
        this.syncScheduled = true;
        this.hooks.scheduleSync(() => this.sync());
      }
    });
  }

  private sync(): void {
    this.syncScheduled = false;
    if (this.dead) return;
    const batch = this.pending;
    this.pending = [];
    for (const { op, source } of batch) {
      this.disk.durable.push(op);
      this.hooks.onDurable(this.id, op);
      const changed = this.state.apply(op, this.hooks.now());
      if (op.type !== 'set') continue;
      if (source === 'local' && this.pendingTs.get(op.entry.key) === op.entry.meta.ts) {
        this.pendingTs.delete(op.entry.key);
      }
      if (changed) {
        this.emit(
          'change',
          source === 'local'
            ? { entry: op.entry, source }
            : { entry: op.entry, source: 'remote', from: source },
        );
      }
    }
    for (const { resolve } of batch) resolve();
  }

  async put(key: string, value: Uint8Array | null, aboveTs = -1): Promise<Entry> {
    if (this.gateP !== null && this.gate !== null) await this.gateP;
    const floorTs = Math.max(this.pendingTs.get(key) ?? -1, aboveTs);
    const entry = this.state.stampLocal(key, value, this.hooks.now(), floorTs);
    this.pendingTs.set(key, entry.meta.ts);
    await this.append({ type: 'set', entry }, 'local');
    return entry;
  }

  async delete(key: string): Promise<Entry | null> {
    const cur = this.state.get(key);
    if ((cur === undefined || cur.value === null) && !this.pendingTs.has(key)) return null;
    return this.put(key, null);
  }

  async merge(
    entries: readonly Entry[],
    from: NodeId,
    onPlanned?: (winners: readonly Entry[]) => void,
  ): Promise<MergeOutcome> {
    const plan = this.state.planMerge(entries, this.hooks.now(), this.limits, this.hooks.admit);
    const source = this.state.sourceIdOf(from); // before the merge is logged
    if (plan.winners.length > 0) onPlanned?.(plan.winners);
    await Promise.all(plan.winners.map((entry) => this.append({ type: 'set', entry }, from)));
    const applied = plan.winners.filter((e) => this.state.holds(e));
    for (const e of applied) this.state.setSource(e.key, e.meta, source);
    return { applied, stale: plan.stale, rejected: plan.rejected };
  }

  raiseAcks(to: ReadonlyMap<NodeId, number>): void {
    this.state.raiseAcks(to);
  }

  async addPeer(peer: NodeId): Promise<void> {
    if (peer !== this.id && !this.state.members.has(peer))
      await this.append({ type: 'add-peer', peer }, 'local');
  }

  async removePeer(peer: NodeId): Promise<void> {
    if (this.state.members.has(peer)) await this.append({ type: 'remove-peer', peer }, 'local');
  }

  async collectGarbage(minAgeMs: number): Promise<number> {
    const victims = this.state.collectableTombstones(this.hooks.now(), minAgeMs);
    await Promise.all(
      victims.map((e) => this.append({ type: 'clear', key: e.key, meta: e.meta }, 'local')),
    );
    return victims.length;
  }
}
