import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StatusSource, TuiModel } from './model.js';
import { idleCollector, startTui } from './start.js';

const model: TuiModel = {
  header: {
    id: 7,
    listen: '127.0.0.1:7401',
    dir: '/tmp/a',
    files: 0,
    bytes: 0,
    nextSeq: 1,
    digest: '0123456789abcdef',
    syncState: 'alone',
  },
  peers: [],
  origins: [],
  transfers: [],
  events: [],
};
const source: StatusSource = { snapshot: () => model };

/** Enough of a terminal for Ink: a size and a write that keeps what was drawn. */
class FakeTerminal extends EventEmitter {
  columns = 100;
  rows = 30;
  written = '';
  write(s: string): boolean {
    this.written += s;
    return true;
  }
}

afterEach(() => vi.useRealTimers());

describe('idleCollector', () => {
  it('collects in full each interval while the node is idle, never while it works, and stops', () => {
    vi.useFakeTimers();
    let idle = false;
    const gc = vi.fn();
    const stop = idleCollector(() => idle, gc, 1000);
    vi.advanceTimersByTime(3000);
    expect(gc).not.toHaveBeenCalled();
    idle = true;
    vi.advanceTimersByTime(2000);
    expect(gc).toHaveBeenCalledTimes(2);
    stop();
    vi.advanceTimersByTime(5000);
    expect(gc).toHaveBeenCalledTimes(2);
  });

  it('does nothing without a gc to call (node run without --expose-gc)', () => {
    vi.useFakeTimers();
    const idle = vi.fn(() => true);
    idleCollector(idle, undefined, 1000)();
    vi.advanceTimersByTime(5000);
    expect(idle).not.toHaveBeenCalled();
  });
});

describe('startTui', () => {
  it('draws the node into the terminal it is given and stops collecting when unmounted', async () => {
    const term = new FakeTerminal();
    const gc = vi.fn();
    const stop = startTui({
      source,
      idle: () => true,
      onQuit: () => {},
      gc,
      gcIntervalMs: 5,
      stdout: term as unknown as NodeJS.WriteStream,
    });
    const deadline = Date.now() + 5000;
    while (gc.mock.calls.length === 0) {
      if (Date.now() > deadline) throw new Error('no idle gc within 5 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    stop();
    // Under CI=true Ink writes only the last frame, at unmount; elsewhere it drew it already.
    expect(term.written).toContain('127.0.0.1:7401');
    const calls = gc.mock.calls.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(gc.mock.calls.length).toBe(calls);
  });
});
