import type { Scheduler } from '../../src/sync/index.js';

/** The simulator's event queue on a virtual clock: ordered by (time, insertion). */
export interface SimEvent {
  time: number;
  order: number;
  fn: () => void;
  cancelled: boolean;
}

export class EventQueue {
  private heap: SimEvent[] = [];
  private order = 0;
  now = 0;

  schedule(delayMs: number, fn: () => void): SimEvent {
    const ev = { time: this.now + Math.max(0, delayMs), order: this.order++, fn, cancelled: false };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
    return ev;
  }

  pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    this.now = Math.max(this.now, top.time);
    return top;
  }

  get size(): number {
    return this.heap.length;
  }

  /**
   * Run the events due by `tEnd` in order, letting the promise chains each one starts settle
   * before the next (deterministic: nothing simulated does real I/O). `after` runs after each
   * event and may throw to stop the run. Returns how many events ran.
   */
  async runUntil(tEnd: number, after: () => void = () => undefined): Promise<number> {
    let ran = 0;
    for (;;) {
      const ev = this.pop();
      if (ev === undefined) return ran;
      if (ev.time > tEnd) {
        // Not due yet: put it back at its time.
        this.now = tEnd;
        this.schedule(ev.time - tEnd, ev.fn);
        return ran;
      }
      if (ev.cancelled) continue;
      ev.fn();
      ran++;
      await new Promise<void>((r) => setImmediate(r));
      after();
    }
  }

  /** A node's Scheduler on this queue: its clock `skewMs` off; its timers die unless `alive()`. */
  scheduler(epochMs: number, skewMs: number, alive: () => boolean): Scheduler {
    return {
      now: () => epochMs + this.now + skewMs,
      setTimeout: (fn, ms) => this.schedule(ms, () => alive() && fn()),
      clearTimeout: (h) => void ((h as SimEvent).cancelled = true),
    };
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.order < b.order);
}
