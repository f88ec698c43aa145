import type { Clock } from '../../src/filesync/clock.js';

/** A clock that moves only when a test says so: timers fire in `advance`, in time order. */
export class ManualClock implements Clock {
  private nowMs = 0;
  private readonly timers = new Map<number, { atMs: number; fn: () => void }>();
  private nextId = 1;

  now(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { atMs: this.nowMs + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Move the time on by `ms`, firing each timer due on the way at its own time. */
  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    for (;;) {
      let due: [number, { atMs: number; fn: () => void }] | undefined;
      for (const t of this.timers)
        if (t[1].atMs <= endMs && (!due || t[1].atMs < due[1].atMs)) due = t;
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.nowMs = due[1].atMs;
      due[1].fn();
    }
    this.nowMs = endMs;
  }

  /** Timers waiting now. */
  get pending(): number {
    return this.timers.size;
  }
}
