import { EventEmitter } from 'node:events';
import {
  DEFAULT_LIMITS,
  isNodeId,
  type Acks,
  type AdmissionHook,
  type Entry,
  type Limits,
  type Meta,
  type NodeId,
  type Rejection,
  type State,
  type StateOp,
} from '../core/index.js';
import { LogLimiter, logger } from '../log/index.js';
import {
  newIdentity,
  nodeStoreDisk,
  readIdentity,
  Store,
  writeIdentity,
  type Identity,
  type RecoveryReport,
  type StoreDisk,
} from '../store/index.js';

import {
  DEFAULT_WAL_MAX_BYTES,
  SEQ_LEASE_STEP,
  type ChangeEvent,
  type MergeResult,
  type NodeEvents,
  type NodeOptions,
} from './options.js';

const log = logger('node');

export class NodeOpenError extends Error {}

/**
 * WaveKV's embeddable node: the pure core plus its durable store, with change events. Reads
 * are synchronous and see only durable state; writes resolve once durable.
 */
export class WaveNode extends EventEmitter<NodeEvents> {
  readonly limits: Readonly<Limits>;
  private readonly clock: () => number;
  private readonly admit: AdmissionHook | undefined;
  private readonly walMaxBytes: number;
  /** key → ts of this node's latest write not yet durable, so the next one stamps above it. */
  private readonly pendingTs = new Map<string, number>();
  /** Source of each op not yet durable, for change events. */
  private readonly pendingSource = new Map<StateOp, 'local' | NodeId>();
  /** key → meta of a peer's winner being logged now (relayed already, see `merge`). */
  private readonly incoming = new Map<string, Meta>();
  private leaseBump: Promise<void> | null = null;
  /** peer → the membership its latest op not yet durable sets (see willBeMember). */
  private readonly pendingMember = new Map<NodeId, { member: boolean }>();
  /** Writes of the `node` file, one at a time (they share a temp file). */
  private identityWrites: Promise<void> = Promise.resolve();
  private seqGate: { promise: Promise<void>; open: () => void } | null = null;
  private closed = false;
  private store!: Store;
  private readonly rejectLog = new LogLimiter();
  /** Whether a retired value may be collected now (see `collectRetired`). */
  private mayCollect: (key: string) => boolean = () => false;

  private readonly dataDirPath: string;
  private readonly disk: StoreDisk;

  private constructor(
    private readonly identity: Identity,
    opts: NodeOptions,
    readonly fresh: boolean,
  ) {
    super();
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...opts.limits });
    this.clock = opts.clock ?? Date.now;
    this.admit = opts.admit;
    this.walMaxBytes = opts.walMaxBytes ?? DEFAULT_WAL_MAX_BYTES;
    this.dataDirPath = opts.dataDir;
    this.disk = opts.disk ?? nodeStoreDisk;
  }

  static async open(opts: NodeOptions): Promise<WaveNode> {
    if (opts.id !== undefined && !isNodeId(opts.id)) {
      throw new NodeOpenError(`node id must be an integer from 1 to 4294967295, got ${opts.id}`);
    }
    const disk = opts.disk ?? nodeStoreDisk;
    await disk.mkdirp(opts.dataDir);
    let ident = await readIdentity(opts.dataDir, disk);
    const fresh = ident === null;
    if (ident !== null && opts.id !== undefined && opts.id !== ident.id) {
      throw new NodeOpenError(
        `data dir ${opts.dataDir} belongs to node ${ident.id}, not ${opts.id}`,
      );
    }
    if (ident === null) {
      ident = newIdentity(opts.id);
      if (opts.id !== undefined) ident.awaitingSeq = true;
      await writeIdentity(opts.dataDir, ident, disk);
    }
    const node = new WaveNode(ident, opts, fresh);
    node.store = await Store.open({
      dataDir: opts.dataDir,
      disk,
      nodeId: ident.id,
      ...(opts.fsync !== undefined && { fsync: opts.fsync }),
      clock: node.clock,
      onApplied: (op, changed) => {
        opts.onDurable?.(op);
        node.onApplied(op, changed);
      },
    });
    const state = node.store.state;
    if (ident.pastSeqBelow !== undefined) state.pastSeqBelow = ident.pastSeqBelow;
    // Seqs up to the lease may have been handed out before a crash: resume above them.
    state.nextSeq = Math.max(state.nextSeq, ident.seqLease + 1);
    // A fresh data dir with a chosen id may be a rebuilt node whose old writes live on at its
    // peers: local writes wait until the sync layer has recovered its seq from them (persisted,
    // so a restart before that still waits).
    if (ident.awaitingSeq === true) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      node.seqGate = { promise, open };
      state.ownAcks = false;
    }
    return node;
  }

  get id(): NodeId {
    return this.identity.id;
  }

  get incarnation(): string {
    return this.identity.incarnation;
  }

  /** The pure state, for the sync layer: read it, never mutate it except through this node. */
  get state(): State {
    return this.store.state;
  }

  get recovery(): RecoveryReport {
    return this.store.recovery;
  }

  get walStats(): Readonly<{ groupCommits: number; records: number; bytes: number }> {
    return this.store.stats;
  }

  get acks(): Acks {
    return this.store.state.acks();
  }

  get digest(): string {
    return this.store.state.digest;
  }

  /** True while local writes wait for the seq to be recovered from peers. */
  get awaitingSeqRecovery(): boolean {
    return this.seqGate !== null;
  }

  /** Called by the sync layer once its first complete round has returned this node's own writes. */
  seqRecovered(): void {
    const gate = this.seqGate;
    if (gate === null) return;
    this.seqGate = null;
    this.store.state.ownAcks = true;
    this.store.state.pastSeqBelow = this.store.state.nextSeq;
    this.identity.pastSeqBelow = this.store.state.nextSeq;
    delete this.identity.awaitingSeq;
    // Writes wait for the flag to be durably cleared, or a crash could reopen the gate's question.
    this.saveIdentity()
      .catch((e: unknown) => log.error('could not record seq recovery', { error: String(e) }))
      .finally(() => gate.open());
  }

  /** The live value of a key (undefined when absent or deleted). */
  get(key: string): Uint8Array | undefined {
    return this.store.state.get(key)?.value ?? undefined;
  }

  /** The winning entry of a key, tombstone included. */
  getEntry(key: string): Entry | undefined {
    return this.store.state.get(key);
  }

  /** Winning entries whose key starts with `prefix`; tombstones only when asked for. */
  *entries(prefix = '', opts: { tombstones?: boolean } = {}): Generator<Entry> {
    for (const e of this.store.state.entries(prefix))
      if (e.value !== null || opts.tombstones) yield e;
  }

  /**
   * The version of `key` a peer's merge is logging now, if any: its winners are relayed before
   * they are durable here, so the next node may ask for its content before this one has it.
   */
  incomingVersion(key: string): Meta | undefined {
    return this.incoming.get(key);
  }

  /** Write `value`; `aboveTs` stamps it above that ts (to overwrite a forgery made in our name). */
  put(key: string, value: Uint8Array, aboveTs?: number): Promise<Entry> {
    return this.write(key, value, aboveTs);
  }

  /** Write a tombstone; resolves to null (and writes nothing) if the key holds no live value. */
  async delete(key: string): Promise<Entry | null> {
    if (this.seqGate !== null) await this.seqGate.promise;
    const cur = this.store.state.get(key);
    if ((cur === undefined || cur.value === null) && !this.pendingTs.has(key)) return null;
    return this.write(key, null);
  }

  private async write(key: string, value: Uint8Array | null, aboveTs = -1): Promise<Entry> {
    if (this.closed) throw new Error('node is closed');
    if (this.seqGate !== null) await this.seqGate.promise;
    const state = this.store.state;
    if (state.nextSeq > this.identity.seqLease) await this.bumpLease();
    const floorTs = Math.max(this.pendingTs.get(key) ?? -1, aboveTs);
    const entry = state.stampLocal(key, value, this.clock(), floorTs);
    const rejection = this.check(entry);
    if (rejection !== null) {
      state.nextSeq--; // Nothing was logged: the seq was never used.
      throw new RangeError(`write rejected: ${rejection.reason}: ${rejection.detail}`);
    }
    this.pendingTs.set(key, entry.meta.ts);
    const op: StateOp = { type: 'set', entry };
    this.pendingSource.set(op, 'local');
    await this.store.append(op);
    return entry;
  }

  private check(entry: Entry): Rejection | null {
    const state = this.store.state;
    const plan = state.planMerge([entry], this.clock(), this.limits, this.admit, false);
    return plan.rejected[0] ?? null;
  }

  /** Reserve the next block of seqs durably before any of it is stamped. */
  private bumpLease(): Promise<void> {
    this.leaseBump ??= (async () => {
      const next = { ...this.identity, seqLease: this.store.state.nextSeq + SEQ_LEASE_STEP };
      await this.saveIdentity(next);
      this.identity.seqLease = next.seqLease;
    })().finally(() => (this.leaseBump = null));
    return this.leaseBump.then(() => {
      if (this.store.state.nextSeq > this.identity.seqLease) return this.bumpLease();
    });
  }

  /**
   * Merge entries from a peer: check limits and admission, log the winners, and resolve once
   * they are durable and visible. Rejections are counted, logged and returned.
   */
  async merge(
    entries: readonly Entry[],
    from: NodeId,
    onPlanned?: (winners: readonly Entry[]) => void,
  ): Promise<MergeResult> {
    if (this.closed) throw new Error('node is closed');
    const state = this.store.state;
    const plan = state.planMerge(entries, this.clock(), this.limits, this.admit);
    for (const r of plan.rejected) {
      // Once per peer and reason a minute: a flood of bad entries must not become one of logs.
      const held = this.rejectLog.allow(`${from}:${r.reason}`, Date.now());
      if (held !== null) {
        const f = { from, key: r.key, reason: r.reason, detail: r.detail };
        log.warn('entry rejected', held > 0 ? { ...f, alsoRejectedLastMinute: held } : f);
      }
      this.emit('rejected', r, from);
    }
    const ops: StateOp[] = plan.winners.map((entry) => ({ type: 'set', entry }));
    for (const op of ops) this.pendingSource.set(op, from);
    const source = state.sourceIdOf(from); // taken now: `from` may be rebuilt meanwhile
    for (const e of plan.winners) this.incoming.set(e.key, e.meta);
    if (plan.winners.length > 0) onPlanned?.(plan.winners);
    try {
      await this.store.appendMany(ops);
    } finally {
      for (const e of plan.winners)
        if (this.incoming.get(e.key) === e.meta) this.incoming.delete(e.key);
    }
    // An op that lost to another write landing in the same group is not "applied" (the same
    // write merged from two peers at once is applied by both: either source tag is true).
    const applied = plan.winners.filter((e) => state.holds(e));
    for (const e of applied) state.setSource(e.key, e.meta, source);
    return { applied, stale: plan.stale, rejected: plan.rejected };
  }

  addPeer(peer: NodeId): Promise<void> {
    if (peer === this.id || this.willBeMember(peer)) return Promise.resolve();
    return this.logMembership(peer, true);
  }

  removePeer(peer: NodeId): Promise<void> {
    if (!this.willBeMember(peer)) return Promise.resolve();
    return this.logMembership(peer, false);
  }

  /**
   * Membership once the membership ops being logged are durable. Judged on the durable state
   * alone, a remove made while the add was still being logged was skipped as a no-op, and the
   * add then made the peer a member for good: a peer record and its forget record merged in
   * one commit did that, and tombstone GC waited on the forgotten member for ever (seed 1379).
   */
  private willBeMember(peer: NodeId): boolean {
    return this.pendingMember.get(peer)?.member ?? this.store.state.members.has(peer);
  }

  private logMembership(peer: NodeId, member: boolean): Promise<void> {
    const mark = { member };
    this.pendingMember.set(peer, mark);
    const op: StateOp = member ? { type: 'add-peer', peer } : { type: 'remove-peer', peer };
    return this.store.append(op).finally(() => {
      if (this.pendingMember.get(peer) === mark) this.pendingMember.delete(peer);
    });
  }

  /** Raise this node's acks (the sync layer's rules decide when). */
  raiseAcks(to: ReadonlyMap<NodeId, number>): void {
    this.store.state.raiseAcks(to);
  }

  /**
   * Collect the live values `test` names as deletes (an embedder's delete records) like
   * tombstones, each only once `mayCollect(key)` agrees (the embedder has applied it, say).
   * Until this is called, only tombstones are collected. Returns the undo.
   */
  collectRetired(
    test: (value: Uint8Array) => boolean,
    mayCollect: (key: string) => boolean,
  ): () => void {
    this.store.state.retire(test, this.clock());
    this.mayCollect = mayCollect;
    return () => {
      if (this.mayCollect === mayCollect) this.mayCollect = () => false;
    };
  }

  /** Clear tombstones every member has acknowledged and that are at least `minAgeMs` old. */
  async collectGarbage(minAgeMs: number): Promise<number> {
    const victims = this.store.state.collectableTombstones(this.clock(), minAgeMs, (key) =>
      this.mayCollect(key),
    );
    await Promise.all(
      victims.map((e) => this.store.append({ type: 'clear', key: e.key, meta: e.meta })),
    );
    return victims.length;
  }

  snapshot(): Promise<void> {
    return this.store.snapshot();
  }

  private onApplied(op: StateOp, changed: boolean): void {
    const source = this.pendingSource.get(op);
    this.pendingSource.delete(op);
    if (op.type !== 'set') return;
    if (source === 'local' && this.pendingTs.get(op.entry.key) === op.entry.meta.ts) {
      this.pendingTs.delete(op.entry.key);
    }
    if (changed) {
      const ev: ChangeEvent =
        source === 'local' || source === undefined
          ? { entry: op.entry, source: 'local' }
          : { entry: op.entry, source: 'remote', from: source };
      this.emit('change', ev);
    }
    if (this.store.walBytes > this.walMaxBytes) {
      this.store
        .snapshot()
        .catch((e: unknown) => log.error('snapshot failed', { error: String(e) }));
    }
  }

  private saveIdentity(ident: Identity = this.identity): Promise<void> {
    const snapshot = { ...ident };
    const p = this.identityWrites.then(() => writeIdentity(this.dataDirPath, snapshot, this.disk));
    this.identityWrites = p.catch(() => undefined);
    return p;
  }

  /** Flush the WAL, snapshot, record the exact seq reservation, close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.store.close();
    if (this.leaseBump !== null) await this.leaseBump;
    this.identity.seqLease = this.store.state.nextSeq - 1;
    await this.saveIdentity();
  }

  /** Stop as a crash would: nothing pending is flushed. For tests. */
  abandon(): void {
    this.closed = true;
    this.store.abandon();
  }
}
