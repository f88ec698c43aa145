import {
  compareMeta,
  type Entry,
  type Meta,
  type NodeId,
  type StateOp,
} from '../../src/core/index.js';
import { setLogLevel } from '../../src/log/index.js';
import { WaveNode } from '../../src/node/index.js';
import { MemStoreDisk, writeIdentity, type Identity } from '../../src/store/index.js';
import { SyncDriver, type Scheduler, type SyncOptions } from '../../src/sync/index.js';
import { EventQueue } from './events.js';
import { SimNetwork, SimTransport } from './network.js';
import { Prng } from './prng.js';

setLogLevel('silent');

/** Virtual wall-clock origin, so skewed clocks never go below zero. */
const EPOCH_MS = 1_700_000_000_000;

export class SimFailure extends Error {}

/** Where every simulated node keeps its data, on its own in-memory disk. */
const DATA_DIR = '/data';
/** Small, so snapshots (and crashes in the middle of them) happen in every history. */
const WAL_MAX_BYTES = 16 * 1024;

/** One node's machine: its disk survives crashes; its process (node, driver) does not. */
interface Slot {
  id: NodeId;
  incarnation: string;
  disk: MemStoreDisk;
  /** The identity this disk's first start writes (a rebuilt node's waits for its seq). */
  identity: Identity | null;
  address: string;
  skewMs: number;
  seeds: string[];
  gen: number;
  node: WaveNode | null;
  driver: SyncDriver | null;
  forgotten: boolean;
  everStarted: boolean;
}

const SYNC: Partial<SyncOptions> = {
  roundIntervalMs: 1000,
  requestTimeoutMs: 3000,
  pushWindowMs: 10,
  pageEntries: 7, // tiny pages so paging is exercised on every bootstrap
  pageBytes: 64 * 1024,
  gcIntervalMs: 2000,
  // The GC grace period must outlast how long a node can hold a concurrent write unseen
  // (joins, partitions and crashes here last a few seconds); production uses an hour.
  tombstoneMinAgeMs: 12_000,
  repairAfterRounds: 3,
};

export interface SimReport {
  seed: number;
  nodes: number;
  events: number;
  writes: number;
  virtualMs: number;
}

/**
 * One seeded history: 3–7 nodes join through one address each, write and delete under drops,
 * duplicates, reordering, partitions, crashes and clock skew; one may be forgotten and one
 * rebuilt. Invariants are checked while it runs and after it heals.
 */
export class World {
  readonly q = new EventQueue();
  readonly rng: Prng;
  readonly net: SimNetwork;
  private readonly slots = new Map<NodeId, Slot>();
  /** Every write made durable at its origin: origin → seq → entry. */
  private readonly writes = new Map<NodeId, Map<number, Entry>>();
  private readonly resolved: Entry[] = [];
  /** Per machine: writes its node acknowledged (made durable) to its writer. */
  private readonly acked = new Map<NodeId, Entry[]>();
  private readonly cleared = new Map<string, Meta[]>();
  private events = 0;
  private checkTurn = 0;
  private incarnations = 0;
  private pendingFailure: string | null = null;

  constructor(readonly seed: number) {
    this.rng = new Prng(seed);
    this.net = new SimNetwork(this.q, this.rng);
  }

  private fail(msg: string): never {
    throw new SimFailure(`seed ${this.seed} at t=${this.q.now}ms: ${msg}`);
  }

  private scheduler(slot: Slot): Scheduler {
    const gen = slot.gen;
    return this.q.scheduler(EPOCH_MS, slot.skewMs, () => slot.gen === gen);
  }

  private onDurable(origin: NodeId, op: StateOp): void {
    if (op.type === 'clear') {
      const l = this.cleared.get(op.key) ?? [];
      l.push(op.meta);
      this.cleared.set(op.key, l);
      return;
    }
    if (op.type !== 'set' || op.entry.meta.node !== origin) return;
    const e = op.entry;
    let m = this.writes.get(origin);
    if (m === undefined) this.writes.set(origin, (m = new Map()));
    const prev = m.get(e.meta.seq);
    // The same write may come back (say, after its tombstone was collected here): same content.
    if (prev !== undefined && !sameWrite(prev, e)) {
      this.fail(`seq ${origin}:${e.meta.seq} reissued (key ${prev.key} then ${e.key})`);
    }
    m.set(e.meta.seq, e);
  }

  /** A new machine for `id`: an empty disk whose first start writes a fresh identity. */
  private newDisk(slot: Pick<Slot, 'id'>, awaitingSeq: boolean): Partial<Slot> {
    const incarnation = (++this.incarnations).toString(16).padStart(32, '0');
    const identity: Identity = { id: slot.id, incarnation, seqLease: 0 };
    if (awaitingSeq) identity.awaitingSeq = true;
    return { incarnation, identity, disk: new MemStoreDisk() };
  }

  private newSlot(id: NodeId, seeds: string[]): Slot {
    const slot: Slot = {
      id,
      ...(this.newDisk({ id }, false) as Pick<Slot, 'incarnation' | 'identity' | 'disk'>),
      address: `sim:${id}`,
      skewMs: this.rng.int(-120_000, 120_000),
      seeds,
      gen: 0,
      node: null,
      driver: null,
      forgotten: false,
      everStarted: false,
    };
    this.slots.set(id, slot);
    return slot;
  }

  /**
   * Start the node's process on its disk: the real WaveNode and store (their device answers
   * come on the virtual clock), then the real sync driver. Opening takes virtual time; a crash
   * meanwhile leaves it unfinished, as a process killed while starting.
   */
  private boot(slot: Slot, fresh: boolean): void {
    const gen = ++slot.gen;
    const sched = this.scheduler(slot);
    const disk = slot.disk.view((fn) => void sched.setTimeout(fn, this.rng.int(0, 3)));
    slot.everStarted = true;
    // Until a start has opened the store, the identity is written again (the same one): a
    // crash may have taken the first write with it.
    const ident = slot.identity;
    const firstStart = fresh || ident !== null;
    void (async () => {
      if (ident !== null) {
        await disk.mkdirp(DATA_DIR);
        await writeIdentity(DATA_DIR, ident, disk);
      }
      const node = await WaveNode.open({
        dataDir: DATA_DIR,
        disk,
        clock: () => sched.now(),
        walMaxBytes: WAL_MAX_BYTES,
        onDurable: (op) => this.onDurable(slot.id, op),
      });
      if (slot.gen !== gen) return;
      slot.identity = null;
      this.checkRecovered(slot, node);
      const transport = new SimTransport(this.net, slot.id, slot.incarnation, slot.address);
      const driver = new SyncDriver(
        node,
        transport,
        sched,
        { ...SYNC, advertise: slot.address, seeds: slot.seeds },
        firstStart,
      );
      slot.node = node;
      slot.driver = driver;
      driver.start();
    })().catch((e: unknown) => {
      if (slot.gen !== gen) return;
      // A disk error while starting: the operator tries again a little later.
      if ((e as NodeJS.ErrnoException).code === 'EIO')
        this.q.schedule(500, () => slot.gen === gen && this.boot(slot, false));
      else this.failLater(`node ${slot.id} failed to start: ${String(e)}`);
    });
  }

  /** A failure found in a promise chain, thrown by the run loop at its next step. */
  private failLater(msg: string): void {
    this.pendingFailure ??= msg;
  }

  /**
   * The node's process dies: killed (its page cache survives) or with its machine (only what
   * was synced survives, and maybe part of an unsynced tail).
   */
  private crash(slot: Slot, how: 'kill' | 'power' | 'either' = 'either'): void {
    slot.gen++; // its timers and device answers die with it
    if (how === 'kill' || (how === 'either' && this.rng.chance(0.5))) slot.disk.kill();
    else slot.disk.crash((n) => this.rng.int(0, n));
    if (slot.driver !== null) {
      const driverTransport = (slot.driver as unknown as { transport: SimTransport }).transport;
      void driverTransport.close();
    }
    slot.node = null;
    slot.driver = null;
  }

  private alive(): Slot[] {
    return [...this.slots.values()].filter((s) => s.node !== null);
  }

  private write(): void {
    const live = this.alive().filter((s) => !s.node!.awaitingSeqRecovery);
    if (live.length === 0) return;
    const slot = this.rng.pick(live);
    const node = slot.node!;
    const key = `k${this.rng.int(0, 24)}`;
    const p = this.rng.chance(0.25)
      ? node.delete(key)
      : node.put(key, Buffer.from(`${slot.id}:${this.q.now}`));
    const gen = slot.gen;
    p.then(
      (e) => {
        if (e === null) return;
        this.resolved.push(e);
        // Acknowledged to its writer: this machine must hold it (or a newer version) for ever.
        if (slot.gen !== gen) return;
        const mine = this.acked.get(slot.id);
        if (mine === undefined) this.acked.set(slot.id, [e]);
        else mine.push(e);
      },
      () => undefined,
    ); // refused (its disk failed): not acknowledged, nothing is owed
  }

  /** A restarted node still holds every write it acknowledged before, whatever the crash. */
  private checkRecovered(slot: Slot, node: WaveNode): void {
    for (const w of this.acked.get(slot.id) ?? []) {
      const have = node.state.get(w.key);
      const covered =
        (have !== undefined && compareMeta(have.meta, w.meta) >= 0) ||
        (this.cleared.get(w.key) ?? []).some((m) => compareMeta(m, w.meta) >= 0);
      if (!covered)
        this.failLater(
          `node ${slot.id} lost its acknowledged write ${w.key}@${w.meta.node}:${w.meta.seq} in a restart`,
        );
    }
  }

  /** No node's acks claim an entry it does not hold (or hold a newer version of). */
  private checkAcks(): void {
    for (const slot of this.alive()) {
      const state = slot.node!.state;
      for (const [origin, upTo] of state.acks()) {
        const ws = this.writes.get(origin);
        if (ws === undefined) continue;
        for (const [seq, w] of ws) {
          if (seq > upTo) continue;
          if (!this.covers(slot, w)) {
            this.fail(
              `node ${slot.id} acks ${origin}:${upTo} but lacks ${origin}:${seq} (key ${w.key})`,
            );
          }
        }
      }
    }
  }

  private covers(slot: Slot, w: Entry): boolean {
    const have = slot.node!.state.get(w.key);
    if (have !== undefined) return compareMeta(have.meta, w.meta) >= 0;
    return (this.cleared.get(w.key) ?? []).some((m) => compareMeta(m, w.meta) >= 0);
  }

  private converged(): boolean {
    const live = this.alive();
    const d = live[0]!.node!.state.digest;
    return live.every((s) => s.node!.state.digest === d && !s.node!.awaitingSeqRecovery);
  }

  private async runUntil(tEnd: number, check = true): Promise<void> {
    this.events += await this.q.runUntil(tEnd, () => {
      if (this.pendingFailure !== null) this.fail(this.pendingFailure);
      if (check && ++this.checkTurn % 8 === 0) this.checkAcks();
    });
  }

  async run(): Promise<SimReport> {
    const n = this.rng.int(3, 7);
    // The node that will be retired and forgotten is never anyone's only way in.
    const forgetId = n >= 4 && this.rng.chance(0.5) ? this.rng.int(2, n) : null;
    const first = this.newSlot(1, []);
    this.boot(first, true);
    for (let id = 2; id <= n; id++) {
      // Each newcomer knows exactly one earlier member's address.
      let via = this.rng.int(1, id - 1);
      if (via === forgetId) via = 1;
      const slot = this.newSlot(id, [`sim:${via}`]);
      this.q.schedule(this.rng.int(0, 2000), () => this.boot(slot, true));
    }
    const all = [...this.slots.keys()];
    this.net.faults = { dropP: 0.05, dupP: 0.03, maxDelayMs: 40 };
    const chaosMs = 15_000;
    for (let t = 0; t < chaosMs; t += this.rng.int(20, 120)) {
      this.q.schedule(t, () => this.write());
    }
    for (let i = this.rng.int(0, 3); i > 0; i--) {
      const at = this.rng.int(1000, chaosMs - 3000);
      this.q.schedule(at, () => {
        const group = new Set(all.filter(() => this.rng.chance(0.4)));
        this.net.partition(group, all);
      });
      this.q.schedule(at + this.rng.int(500, 4000), () => this.net.heal());
    }
    for (let i = this.rng.int(0, 3); i > 0; i--) {
      const slot = this.slots.get(this.rng.pick(all))!;
      const at = this.rng.int(2500, chaosMs - 2000);
      this.q.schedule(at, () => this.crash(slot));
      this.q.schedule(at + this.rng.int(300, 3000), () => {
        if (slot.node === null && slot.everStarted && !slot.forgotten) this.boot(slot, false);
      });
    }
    for (let i = this.rng.int(0, 2); i > 0; i--) {
      // The disk fails a write or a sync (EIO): the store refuses every write after it and
      // the node leaves the cluster, until its operator restarts it.
      const slot = this.slots.get(this.rng.pick(all))!;
      const at = this.rng.int(2500, chaosMs - 3000);
      const op = this.rng.chance(0.5) ? 'write' : 'sync';
      this.q.schedule(at, () => slot.disk.fail(op, `${DATA_DIR}/wal/`, 'EIO'));
      this.q.schedule(at + this.rng.int(500, 2500), () => {
        if (slot.forgotten || !slot.everStarted) return;
        this.crash(slot, 'kill');
        this.boot(slot, false);
      });
    }
    if (this.rng.chance(0.5)) {
      // Killed, restarted, and then the power goes: what the restart read back from the page
      // cache must have been made durable by it.
      const slot = this.slots.get(this.rng.pick(all))!;
      const at = this.rng.int(2500, chaosMs - 6000);
      const restart = (): void => {
        if (slot.node === null && slot.everStarted && !slot.forgotten) this.boot(slot, false);
      };
      const back = at + this.rng.int(200, 1000);
      const cut = back + this.rng.int(100, 2000);
      this.q.schedule(at, () => this.crash(slot, 'kill'));
      this.q.schedule(back, restart);
      this.q.schedule(cut, () => this.crash(slot, 'power'));
      this.q.schedule(cut + this.rng.int(200, 1000), restart);
    }
    let forgotten: Slot | null = null;
    if (forgetId !== null) {
      forgotten = this.slots.get(forgetId)!;
      const at = this.rng.int(3000, chaosMs - 4000);
      const f = forgotten;
      this.q.schedule(at, () => {
        f.forgotten = true;
        this.crash(f);
      });
      // The operator runs forget-peer on a member that is up, and again until it works (that
      // member's disk may fail under it).
      const forget = (): void => {
        const by = this.alive().find((s) => !s.node!.awaitingSeqRecovery);
        if (by === undefined) return void this.q.schedule(1000, forget);
        by.driver!.forgetPeer(f.id).catch(() => this.q.schedule(1000, forget));
      };
      this.q.schedule(at + 1000, forget);
    }
    await this.runUntil(chaosMs);

    // Heal: no more faults, everyone (not forgotten) back up.
    this.net.heal();
    this.net.faults = { dropP: 0, dupP: 0, maxDelayMs: 5 };
    for (const s of this.slots.values())
      if (s.node === null && !s.forgotten && s.everStarted) this.boot(s, false);
    for (const s of this.slots.values()) {
      if (!s.everStarted && !s.forgotten) this.boot(s, true);
    }
    await this.runUntil(this.q.now + 5000);

    // A rebuilt node: same id, empty disk, new incarnation; it must recover its seq first.
    if (this.rng.chance(0.3)) {
      const victim = this.rng.pick(this.alive().filter((s) => s.id !== 1));
      if (victim !== undefined) {
        this.crash(victim);
        Object.assign(victim, this.newDisk(victim, true));
        this.acked.delete(victim.id); // a new machine: its old disk is gone
        victim.seeds = ['sim:1'];
        this.boot(victim, true);
      }
    }
    const deadline = this.q.now + 60_000;
    while (!this.converged()) {
      if (this.q.now > deadline) this.fail(`no convergence 60 s after healing: ${this.describe()}`);
      await this.runUntil(this.q.now + 1000);
    }
    this.checkAcks();
    this.checkFinal(forgotten);
    return {
      seed: this.seed,
      nodes: n,
      events: this.events,
      writes: this.resolved.length,
      virtualMs: this.q.now,
    };
  }

  private checkFinal(forgotten: Slot | null): void {
    const live = this.alive();
    const ref = live[0]!.node!.state;
    for (const s of live) {
      const st = s.node!.state;
      if (st.size !== ref.size)
        this.fail(`node ${s.id} holds ${st.size} keys, node ${live[0]!.id} ${ref.size}`);
      for (const e of ref.entries()) {
        const o = st.get(e.key);
        if (o === undefined || compareMeta(o.meta, e.meta) !== 0)
          this.fail(`node ${s.id} differs on ${e.key}`);
      }
    }
    for (const w of this.resolved) {
      if (forgotten !== null && w.meta.node === forgotten.id) continue;
      for (const s of live)
        if (!this.covers(s, w))
          this.fail(`resolved write ${w.key}@${w.meta.node}:${w.meta.seq} lost at node ${s.id}`);
    }
  }

  private describe(): string {
    return this.alive()
      .map(
        (s) =>
          `${s.id}:${s.node!.state.digest.slice(0, 6)}/${s.node!.state.size}/links=${s.driver!.linkedPeers.join(',')}`,
      )
      .join(' ');
  }
}

function sameWrite(a: Entry, b: Entry): boolean {
  if (a.key !== b.key || a.meta.ts !== b.meta.ts) return false;
  if (a.value === null || b.value === null) return a.value === b.value;
  return Buffer.from(a.value).equals(Buffer.from(b.value));
}
