import { realClock, type Clock } from './clock.js';

/** First pause after a failed apply; doubled per further failure of the same path. */
export const RETRY_FIRST_MS = 1000;
/** Longest pause between tries of one path. */
export const RETRY_MAX_MS = 5 * 60_000;

export interface ApplyQueueOptions {
  /** Paths applied at once. */
  limit: number;
  /**
   * Slots beyond `limit` for a peer that holds fewer than this many: when one peer's changes
   * fill every slot (records whose content never comes, say), another peer's still start.
   */
  reservePerSource: number;
  /** Of those, at most this many are paths that failed before (parked ones). */
  parkedLimit: number;
  /** A failed apply, and when it is tried again. */
  onFailure: (rel: string, e: unknown, retryInMs: number) => void;
  /** Whose timers the retries wait on (the real clock by default). */
  clock?: Clock;
}

/**
 * Remote changes waiting to be applied, and the slots that apply them. Changes are taken
 * from the peers that sent them in turn. A path whose apply failed (content no peer serves, a
 * disk error) is parked: tried again after a pause that doubles per failure up to
 * RETRY_MAX_MS, and only in a few of the slots. So records a hostile or broken peer never
 * serves cannot hold the slots an honest change needs.
 */
export class ApplyQueue {
  /** source peer (0: none) → paths it changed, waiting; in the order sources are served. */
  private readonly fresh = new Map<number, Set<string>>();
  private freshCount = 0;
  private readonly due = new Set<string>();
  private readonly failed = new Map<string, { count: number; timer: unknown }>();
  private readonly bySource = new Map<number, number>();
  private running = 0;
  private runningParked = 0;
  private closed = false;
  private readonly clock: Clock;

  constructor(
    private readonly run: (rel: string) => Promise<void>,
    private readonly opts: ApplyQueueOptions,
  ) {
    this.clock = opts.clock ?? realClock;
  }

  /** Queue `rel`, changed by peer `source` (0 when not from a peer). */
  add(rel: string, source = 0): void {
    if (this.closed) return;
    // A parked path with a new version may be servable now: it is due, in the parked slots.
    if (this.failed.has(rel)) return void (this.due.add(rel), this.pump());
    let q = this.fresh.get(source);
    if (q === undefined) this.fresh.set(source, (q = new Set()));
    if (!q.has(rel)) this.freshCount++;
    q.add(rel);
    this.pump();
  }

  /** Queued or waiting for a retry. */
  has(rel: string): boolean {
    for (const q of this.fresh.values()) if (q.has(rel)) return true;
    return this.due.has(rel) || this.failed.has(rel);
  }

  /** Paths waiting to be applied now. */
  get size(): number {
    return this.freshCount + this.due.size;
  }

  /** Applies under way. */
  get applying(): number {
    return this.running;
  }

  /** Paths whose last apply failed (waiting for a retry or in one). */
  get parked(): number {
    return this.failed.size;
  }

  /**
   * The parked paths, when nothing but their retries is left to do (a version whose content
   * no peer serves waits for ever; the simulator tells that from work left).
   */
  onlyParked(): string[] | null {
    if (this.freshCount > 0 || this.running > this.runningParked) return null;
    return [...this.failed.keys()];
  }

  /** Stop: nothing more starts. Returns how many paths were left unapplied. */
  close(): number {
    this.closed = true;
    for (const f of this.failed.values()) if (f.timer !== null) this.clock.clearTimeout(f.timer);
    const all = [...this.due, ...this.failed.keys()];
    for (const q of this.fresh.values()) all.push(...q);
    const left = new Set(all).size;
    this.fresh.clear();
    this.freshCount = 0;
    this.due.clear();
    return left;
  }

  /** The next fresh path a free slot may take: sources in turn, each moved last once served. */
  private nextFresh(): { rel: string; source: number } | null {
    const extra = this.running >= this.opts.limit;
    for (const [source, q] of this.fresh) {
      if (extra && (this.bySource.get(source) ?? 0) >= this.opts.reservePerSource) continue;
      const rel = q.values().next().value!;
      q.delete(rel);
      this.freshCount--;
      this.fresh.delete(source);
      if (q.size > 0) this.fresh.set(source, q);
      return { rel, source };
    }
    return null;
  }

  private next(): { rel: string; source: number; parked: boolean } | null {
    const fresh = this.nextFresh();
    if (fresh !== null) return { ...fresh, parked: false };
    if (this.running >= this.opts.limit || this.runningParked >= this.opts.parkedLimit) return null;
    const rel = this.due.values().next().value;
    if (rel === undefined) return null;
    this.due.delete(rel);
    return { rel, source: -1, parked: true };
  }

  private pump(): void {
    const max = this.opts.limit + this.opts.reservePerSource;
    while (!this.closed && this.running < max && this.size > 0) {
      const job = this.next();
      if (job === null) return;
      this.start(job.rel, job.source, job.parked);
    }
  }

  private start(rel: string, source: number, parked: boolean): void {
    this.running++;
    if (parked) this.runningParked++;
    this.bySource.set(source, (this.bySource.get(source) ?? 0) + 1);
    this.run(rel)
      .then(
        () => this.succeeded(rel),
        (e: unknown) => this.failedOnce(rel, e),
      )
      .finally(() => {
        this.running--;
        if (parked) this.runningParked--;
        const n = this.bySource.get(source)! - 1;
        if (n === 0) this.bySource.delete(source);
        else this.bySource.set(source, n);
        this.pump();
      });
  }

  private succeeded(rel: string): void {
    const f = this.failed.get(rel);
    if (f === undefined) return;
    if (f.timer !== null) this.clock.clearTimeout(f.timer);
    this.failed.delete(rel);
  }

  private failedOnce(rel: string, e: unknown): void {
    if (this.closed) return;
    const f = this.failed.get(rel) ?? { count: 0, timer: null };
    f.count++;
    const delayMs = Math.min(RETRY_FIRST_MS * 2 ** Math.min(f.count - 1, 30), RETRY_MAX_MS);
    this.opts.onFailure(rel, e, delayMs);
    if (f.timer !== null) this.clock.clearTimeout(f.timer);
    f.timer = this.clock.setTimeout(() => {
      f.timer = null;
      this.due.add(rel);
      this.pump();
    }, delayMs);
    this.failed.set(rel, f);
  }
}
