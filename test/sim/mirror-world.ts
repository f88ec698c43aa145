import { compareMeta, type Entry, type NodeId } from '../../src/core/index.js';
import { FileSync } from '../../src/filesync/engine.js';
import { MemDisk } from '../../src/filesync/mem-disk.js';
import { conflictOrigin, FILE_PREFIX, isConflictCopy, pathOf } from '../../src/filesync/paths.js';
import type { Version } from '../../src/filesync/record.js';
import { setLogLevel } from '../../src/log/index.js';
import { WaveNode } from '../../src/node/index.js';
import { MemStoreDisk, writeIdentity } from '../../src/store/index.js';
import { SyncDriver, type Scheduler, type SyncOptions } from '../../src/sync/index.js';
import { EventQueue } from './events.js';
import { Ledger } from './ledger.js';
import { SimNetwork, SimTransport } from './network.js';
import { Prng } from './prng.js';
import { SimHints } from './sim-hints.js';
import { unservable } from './unservable.js';
import { SimFailure, type SimReport } from './world.js';
import { SimUsers } from './users.js';
import {
  ignoredBy,
  kvVersusTree,
  kvDiff,
  processView,
  ROOT,
  said,
  sameTree,
  treeDiff,
  treeOf,
  type Machine,
} from './machine.js';

setLogLevel('silent');

const EPOCH_MS = 1_700_000_000_000;
const DATA_DIR = '/data';

const SYNC: Partial<SyncOptions> = {
  roundIntervalMs: 1000,
  requestTimeoutMs: 3000,
  pushWindowMs: 10,
  pageEntries: 7,
  tombstoneMinAgeMs: 3600_000,
  repairAfterRounds: 3,
};

/**
 * In three histories of ten, delete records are collected within seconds (all members have
 * them, and each mirror has applied them): a path gone from every KV must stay gone. Not
 * sooner than the kernel writes a tree back (5 s here; the default age is an hour): a power
 * cut that undoes an unlink after its record is gone brings back a file nobody can tell from
 * a new one (seed 312 at 2 s).
 */
const GC: Partial<SyncOptions> = { tombstoneMinAgeMs: 6000, gcIntervalMs: 1000 };

/**
 * The mirror's simulator: per machine the production WaveNode and store on `MemStoreDisk`, the
 * real sync driver on the simulated network, and the real FileSync engine (scanner, applier,
 * apply queue, disk index and its journal) on `MemDisk`, on one virtual clock per machine.
 * Users write and delete files, on machines that are up or down; the watcher's hints come late
 * or not at all; processes are killed (kill -9) or lose power; the network drops, reorders and
 * partitions. At quiescence every tree is the same, and the ledger's rules hold.
 */
export class MirrorWorld {
  readonly q = new EventQueue();
  readonly rng: Prng;
  readonly net: SimNetwork;
  private readonly machines = new Map<NodeId, Machine>();
  readonly ledger = new Ledger();
  /** Every write made durable at its origin (origin:seq → it), for the acks check. */
  private readonly writes = new Map<string, Entry>();
  private events = 0;
  private pendingFailure: string | null = null;
  /** How often a user's write is a file of several blocks (in three histories of ten). */
  readonly largeP: number;
  private readonly sync: Partial<SyncOptions>;
  /** How often a user rewrites the ignore file (in two histories of ten). */
  readonly ignoreP: number;
  private readonly users: SimUsers;

  /**
   * `powerCuts`: half the crashes are power cuts (a new boot: the store, the index journal and
   * the tree keep only what was synced), the others kills.
   */
  constructor(
    readonly seed: number,
    private readonly powerCuts = true,
  ) {
    this.rng = new Prng(seed);
    this.net = new SimNetwork(this.q, this.rng);
    this.largeP = this.rng.chance(0.3) ? 0.05 : 0;
    this.sync = this.rng.chance(0.3) ? { ...SYNC, ...GC } : SYNC;
    this.ignoreP = this.rng.chance(0.2) ? 0.03 : 0;
    this.users = new SimUsers(this);
  }

  /** MIRROR_TRACE=1 prints what happens, for replaying a seed by hand. */
  trace(msg: string): void {
    if (process.env.MIRROR_TRACE === '1') process.stderr.write(`t=${this.q.now} ${msg}\n`);
  }

  private fail(msg: string): never {
    throw new SimFailure(`mirror seed ${this.seed} at t=${this.q.now}ms: ${msg}`);
  }

  private scheduler(m: Machine): Scheduler {
    const gen = m.gen;
    return this.q.scheduler(EPOCH_MS, m.skewMs, () => m.gen === gen);
  }

  private newMachine(id: NodeId, seeds: string[]): Machine {
    const skewMs = this.rng.int(-30_000, 30_000);
    const m: Machine = {
      id,
      store: new MemStoreDisk(),
      tree: new MemDisk(ROOT, () => EPOCH_MS + this.q.now + skewMs),
      skewMs,
      seeds,
      gen: 0,
      node: null,
      driver: null,
      mirror: null,
      hints: null,
      started: false,
      opened: false,
      boots: 1,
      collected: new Map(),
    };
    this.machines.set(id, m);
    return m;
  }

  /** Start the machine's process: node, driver, then the mirror (each takes virtual time). */
  private boot(m: Machine): void {
    this.trace(`boot m${m.id}`);
    const gen = ++m.gen;
    const sched = this.scheduler(m);
    const dataDisk = m.store.view((fn) => void sched.setTimeout(fn, this.rng.int(0, 3)));
    const tree = processView(m.tree, () => m.gen === gen);
    const fresh = !m.started;
    m.started = true;
    void (async () => {
      if (!m.opened) {
        // Until a start has opened the store, its identity is written again (a crash may
        // have taken the first write with it).
        await dataDisk.mkdirp(DATA_DIR);
        await writeIdentity(
          DATA_DIR,
          { id: m.id, incarnation: m.id.toString(16).padStart(32, '0'), seqLease: 0 },
          dataDisk,
        );
      }
      const node = await WaveNode.open({
        dataDir: DATA_DIR,
        disk: dataDisk,
        clock: () => sched.now(),
        onDurable: (op) => {
          if (op.type === 'set' && op.entry.meta.node === m.id)
            this.trace(`m${m.id} durable ${op.entry.key}@${m.id}:${op.entry.meta.seq} ${said(op)}`);
          this.ledger.durable(m.id, op);
          if (op.type === 'clear') {
            this.trace(`m${m.id} collected ${op.key}@${op.meta.node}:${op.meta.seq}`);
            m.collected.set(op.key, op.meta);
          }
          if (op.type === 'set' && op.entry.meta.node === m.id)
            this.writes.set(`${m.id}:${op.entry.meta.seq}`, op.entry);
        },
      });
      if (m.gen !== gen) return;
      m.opened = true;
      const transport = new SimTransport(this.net, m.id, `i${m.id}`, `sim:${m.id}`);
      const driver = new SyncDriver(
        node,
        transport,
        sched,
        { ...this.sync, advertise: `sim:${m.id}`, seeds: m.seeds },
        fresh,
      );
      m.node = node;
      m.driver = driver;
      driver.start();
      let hints: SimHints | null = null;
      const mirror = await FileSync.start({
        root: ROOT,
        dataDir: DATA_DIR,
        replica: { node, driver },
        rescanIntervalMs: 2000,
        // The cap on conflict copies trashes the oldest (unit-tested): off here, a copy gone
        // is a write lost.
        maxConflicts: 10_000,
        ports: {
          disk: tree,
          dataDisk,
          clock: sched,
          bootId: () => Promise.resolve(`boot ${m.boots}`),
          hints: (_root, _ignore, onHint, hooks) => (hints = new SimHints(onHint, hooks)),
        },
      });
      mirror.on('event', (ev) => this.trace(`m${m.id} ${ev.kind} ${ev.path} ${ev.detail ?? ''}`));
      if (m.gen === gen) [m.mirror, m.hints] = [mirror, hints];
    })().catch((e: unknown) => {
      if (m.gen === gen) this.pendingFailure ??= `machine ${m.id} failed to start: ${String(e)}`;
    });
  }

  /** The process dies: killed (the page cache survives) or with its machine's power. */
  private crash(m: Machine): void {
    const power = this.powerCuts && this.rng.chance(0.5);
    this.trace(`crash m${m.id} ${power ? 'power' : 'kill'}`);
    m.gen++;
    if (power) {
      m.store.crash((n) => this.rng.int(0, n));
      m.tree.crash();
      m.boots++;
    } else m.store.kill();
    if (m.driver !== null)
      void (m.driver as unknown as { transport: SimTransport }).transport.close();
    m.node = null;
    m.driver = null;
    m.mirror = null;
    m.hints = null;
  }

  private async runUntil(tEnd: number): Promise<void> {
    this.events += await this.q.runUntil(tEnd, () => {
      if (this.pendingFailure !== null) this.fail(this.pendingFailure);
    });
  }

  async run(): Promise<SimReport> {
    const n = this.rng.int(3, 5);
    this.boot(this.newMachine(1, []));
    for (let id = 2; id <= n; id++) {
      const m = this.newMachine(id, [`sim:${this.rng.int(1, id - 1)}`]);
      this.q.schedule(this.rng.int(0, 2000), () => this.boot(m));
    }
    const all = [...this.machines.keys()];
    this.net.faults = { dropP: 0.05, dupP: 0.03, maxDelayMs: 40 };
    const chaosMs = 12_000;
    for (let t = 100; t < chaosMs; t += this.rng.int(30, 200))
      this.q.schedule(t, () => this.users.edit(this.all()));
    for (let i = this.rng.int(0, 2); i > 0; i--) {
      const at = this.rng.int(1000, chaosMs - 3000);
      this.q.schedule(at, () =>
        this.net.partition(new Set(all.filter(() => this.rng.chance(0.4))), all),
      );
      this.q.schedule(at + this.rng.int(500, 3000), () => this.net.heal());
    }
    for (let i = this.rng.int(1, 3); i > 0; i--) {
      const m = this.machines.get(this.rng.pick(all))!;
      const at = this.rng.int(2500, chaosMs - 2000);
      this.q.schedule(at, () => m.node !== null && this.crash(m));
      this.q.schedule(
        at + this.rng.int(300, 3000),
        () => m.node === null && m.started && this.boot(m),
      );
    }
    // The kernel writes each machine's tree back every 5 s (what a power cut spares).
    const writeback = (): void => {
      for (const m of this.machines.values()) {
        m.tree.syncAll();
        for (const [rel, hash] of treeOf(m.tree)) this.ledger.madeDurable(rel, hash);
      }
      this.q.schedule(5000, writeback);
    };
    this.q.schedule(this.rng.int(0, 5000), writeback);
    await this.runUntil(chaosMs);
    this.net.heal();
    this.net.faults = { dropP: 0, dupP: 0, maxDelayMs: 5 };
    for (const m of this.machines.values()) if (m.mirror === null && m.node === null) this.boot(m);
    const deadline = this.q.now + 60_000;
    while (!(await this.quiet())) {
      if (this.q.now > deadline) {
        const m0 = this.all()[0]!;
        const gone = m0.node === null ? null : unservable(m0.node, this.disks());
        const kv = gone === null ? null : kvVersusTree(m0, await ignoredBy(m0.tree), gone);
        const diffs = `${treeDiff(this.all())} ${kvDiff(this.all())} ${kv ?? ''}`;
        this.fail(`no quiescence 60 s after healing: ${this.describe()} ${diffs}`);
      }
      await this.runUntil(this.q.now + 500);
    }
    await this.check();
    return {
      seed: this.seed,
      nodes: n,
      events: this.events,
      writes: this.users.edits,
      virtualMs: this.q.now,
    };
  }

  /** Every process up, every KV the same, nothing left to apply, every tree the same. */
  private async quiet(): Promise<boolean> {
    const ms = [...this.machines.values()];
    if (ms.some((m) => m.mirror === null)) return false;
    const digest = ms[0]!.node!.state.digest;
    if (ms.some((m) => m.node!.state.digest !== digest)) return false;
    let gone: Map<string, string> | null = null;
    for (const m of ms) {
      if (m.mirror!.idle) continue;
      // Parked for content nobody holds is as far as a mirror can go (see unservable.ts).
      const parked = m.mirror!.onlyParked;
      if (parked === null || parked.length === 0) return false;
      gone ??= unservable(ms[0]!.node!, this.disks());
      if (parked.some((rel) => !gone!.has(rel))) return false;
    }
    // Ignored paths are each node's own (the rules are the same: the ignore file syncs).
    const hidden = await ignoredBy(ms[0]!.tree);
    const tree = treeOf(ms[0]!.tree, hidden);
    gone ??= unservable(ms[0]!.node!, this.disks());
    if (!ms.every((m) => sameTree(treeOf(m.tree, hidden), tree))) {
      // Where no content can be had, each keeps what it had (an older version, or nothing).
      const skip = (rel: string, isDir: boolean): boolean => gone!.has(rel) || hidden(rel, isDir);
      const rest = treeOf(ms[0]!.tree, skip);
      if (!ms.every((m) => sameTree(treeOf(m.tree, skip), rest))) return false;
    }
    // And the KV says what the trees hold (a rescan may still have that to publish: seed 964).
    return kvVersusTree(ms[0]!, hidden, gone) === null;
  }

  private disks(): MemDisk[] {
    return [...this.machines.values()].map((m) => m.tree);
  }

  private async check(): Promise<void> {
    const m0 = [...this.machines.values()][0]!;
    const hidden = await ignoredBy(m0.tree);
    const tree = treeOf(m0.tree, hidden);
    const finals = new Map<string, Version>();
    const gone = unservable(m0.node!, this.disks());
    for (const [rel, hash] of gone)
      if (this.ledger.mustLive(rel, hash)) this.fail(`${rel}: content ${hash} lost everywhere`);
    for (const e of m0.node!.entries(FILE_PREFIX, { tombstones: true }))
      finals.set(pathOf(e.key)!, [e.meta.node, e.meta.seq]);
    const wrong = kvVersusTree(m0, hidden, gone);
    if (wrong !== null) this.fail(wrong);
    // At most one conflict copy per clash: no two copies of a path keep the same content.
    const copies = new Set<string>();
    for (const [rel, hash] of tree) {
      if (!isConflictCopy(rel)) continue;
      const id = `${conflictOrigin(rel)}\0${hash}`;
      if (copies.has(id))
        this.fail(`two conflict copies of ${conflictOrigin(rel)} hold the same content`);
      copies.add(id);
    }
    this.checkAcks();
    const problem = this.ledger.firstProblem;
    if (problem !== null) this.fail(problem);
    // A path whose content no one holds keeps an older version here and there (see quiet()).
    const back = this.ledger.resurrected(treeOf(m0.tree, (r, d) => gone.has(r) || hidden(r, d)));
    if (back.length > 0) this.fail(`deletes undone: ${back.join(', ')}`);
    const lost = this.ledger.lostWrites(finals.values(), tree, hidden);
    if (lost.length > 0) this.fail(`published writes lost: ${lost.slice(0, 5).join(', ')}`);
  }

  /** No node's acks claim a write it does not hold (or hold a newer version of). */
  private checkAcks(): void {
    for (const m of this.machines.values()) {
      const state = m.node!.state;
      const acks = state.acks();
      for (const w of this.writes.values()) {
        const upTo = acks.get(w.meta.node) ?? 0;
        if (w.meta.seq > upTo) continue;
        const have = state.get(w.key) ?? m.collected.get(w.key);
        const meta = have === undefined ? undefined : 'meta' in have ? have.meta : have;
        if (meta === undefined || compareMeta(meta, w.meta) < 0)
          this.fail(
            `node ${m.id} acks ${w.meta.node}:${upTo} but lacks seq ${w.meta.seq} (${w.key})`,
          );
      }
    }
  }

  private all(): Machine[] {
    return [...this.machines.values()];
  }

  private describe(): string {
    return [...this.machines.values()]
      .map((m) =>
        m.node === null
          ? `${m.id}:down`
          : `${m.id}:${m.node.state.digest.slice(0, 6)}/${m.mirror === null ? 'no-mirror' : m.mirror.idle ? 'idle' : JSON.stringify(m.mirror.progress)}/files=${treeOf(m.tree).size}`,
      )
      .join(' ');
  }
}
