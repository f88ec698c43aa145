import type { Entry, Limits, Meta, NodeId, State } from '../core/index.js';
import { DEFAULT_BLOCK_BUDGET, DEFAULT_SERVE_BUDGET, type ServeBudgetOptions } from './budget.js';
import type { SyncMessage } from './messages.js';

/** A connected, authenticated peer as the transport hands it to sync. */
export interface PeerLink {
  readonly peer: NodeId;
  readonly incarnation: string;
  /** The address the peer advertises (host:port), if any. */
  readonly advertise: string | null;
  /** Queue a message; false when the link is gone or too far behind (backpressure). */
  send(msg: SyncMessage): boolean;
  /** Bytes queued on the link and not yet written. */
  readonly bufferedBytes: number;
}

/** What sync needs from a transport; the WebSocket one and the simulator's both provide it. */
export interface Transport {
  /** Start listening/dialling; events go to `handler`. */
  start(handler: TransportHandler): void;
  /** Keep a connection to `address` (idempotent; reconnects by itself). */
  dial(address: string): void;
  /** Drop and stop redialling the connection to `peer`. */
  hangUp(peer: NodeId): void;
  /** This node's device ID, advertised in its peer record (transports with certificates). */
  readonly device?: string;
  /** A peer record names the device `peer` runs on: admit it by that. */
  learn?(peer: NodeId, device: string): void;
  close(): Promise<void>;
}

export interface TransportHandler {
  linkUp(link: PeerLink): void;
  linkDown(peer: NodeId, reason: string): void;
  message(peer: NodeId, msg: SyncMessage): void;
}

export type TimerHandle = unknown;

/** Time and timers, injected so the simulator can run the driver on a virtual clock. */
export interface Scheduler {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface ChangeLike {
  readonly entry: Entry;
  readonly source: 'local' | 'remote';
  readonly from?: NodeId;
}

export interface MergeOutcome {
  readonly applied: Entry[];
  readonly stale: number;
  readonly rejected: readonly { key: string; reason: string; detail: string; meta?: Meta }[];
}

/** The node as sync sees it. WaveNode implements it; the simulator has a fake-disk one. */
export interface SyncNode {
  readonly id: NodeId;
  readonly incarnation: string;
  readonly state: State;
  readonly limits: Readonly<Limits>;
  readonly awaitingSeqRecovery: boolean;
  seqRecovered(): void;
  put(key: string, value: Uint8Array, aboveTs?: number): Promise<Entry>;
  delete(key: string): Promise<Entry | null>;
  /**
   * Merge a peer's entries; resolves once the winners are durable and in the state.
   * `onPlanned` hears the winners as soon as they are chosen, before they are logged.
   */
  merge(
    entries: readonly Entry[],
    from: NodeId,
    onPlanned?: (winners: readonly Entry[]) => void,
  ): Promise<MergeOutcome>;
  raiseAcks(to: ReadonlyMap<NodeId, number>): void;
  addPeer(peer: NodeId): Promise<void>;
  removePeer(peer: NodeId): Promise<void>;
  collectGarbage(minAgeMs: number): Promise<number>;
  on(ev: 'change', fn: (c: ChangeLike) => void): unknown;
  off(ev: 'change', fn: (c: ChangeLike) => void): unknown;
}

/** Tunables of the sync driver. Units are in the names. */
export interface SyncOptions {
  /** Rounds with each peer this often (the backstop behind push relay). */
  roundIntervalMs: number;
  /** A round (or repair step) that gets no answer in this long is abandoned. */
  requestTimeoutMs: number;
  /** Pushes gather changes for this long before they go out. */
  pushWindowMs: number;
  /** Pushes to a peer are dropped (rounds catch up) while its link has this much queued. */
  maxPushBufferedBytes: number;
  /** Entries per page/message; bytes per page/message. */
  pageEntries: number;
  pageBytes: number;
  /** Consecutive quiet rounds with differing digests before a repair. */
  repairAfterRounds: number;
  /** Tombstone GC: how often, and the minimum age of a tombstone it may clear. */
  gcIntervalMs: number;
  tombstoneMinAgeMs: number;
  /** This node's advertised address, written under __peer/<id>. */
  advertise: string | null;
  /** Addresses to dial at start. */
  seeds: string[];
  /** Dial every member advertised under __peer/<id> (true), or only `seeds` (benchmarks of chains). */
  discover: boolean;
  /** What one peer's rounds, pages and repair requests may make us send (see ServeBudgets). */
  serveBudget: ServeBudgetOptions;
  /** What one peer's block requests may make us send. */
  blockBudget: ServeBudgetOptions;
}

export const DEFAULT_SYNC_OPTIONS: Readonly<SyncOptions> = Object.freeze({
  roundIntervalMs: 1000,
  requestTimeoutMs: 10_000,
  pushWindowMs: 10,
  maxPushBufferedBytes: 8 * 1024 * 1024,
  pageEntries: 10_000,
  pageBytes: 4 * 1024 * 1024,
  repairAfterRounds: 3,
  gcIntervalMs: 60_000,
  tombstoneMinAgeMs: 60 * 60 * 1000,
  advertise: null,
  seeds: [],
  discover: true,
  serveBudget: DEFAULT_SERVE_BUDGET,
  blockBudget: DEFAULT_BLOCK_BUDGET,
});
