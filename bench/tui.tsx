/**
 * Event-loop delay with and without the TUI: `npm run bench:tui`. Renders the real App at its
 * 10 redraws/s into an off-screen terminal, fed by a busy model (3 peers, 200 events, 5
 * transfers), while a timer measures how late the loop runs (perf_hooks).
 */
import { Writable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { render } from 'ink';
import { App } from '../src/tui/App.js';
import type { StatusSource, TuiModel } from '../src/tui/model.js';
import { envInt, fmt, median, record } from './util.js';

process.env.NODE_ENV ??= 'production'; // as bin/filesync.cjs runs it
const SECONDS = envInt('SECONDS', 5);
const REPEAT = envInt('REPEAT', 3);
const REFRESH_MS = envInt('REFRESH_MS', 200);

class BusySource implements StatusSource {
  private n = 0;
  snapshot(): TuiModel {
    this.n++;
    const peer = (id: number) => ({
      id,
      address: `127.0.0.1:${7400 + id}`,
      connected: true,
      lastRoundAgeMs: this.n % 1000,
      rttMs: 1,
      oursCovered: this.n % 100,
      oursTotal: 100,
      theirsCovered: 50,
      theirsTotal: 100,
      digestAgrees: true,
      bytesInPerSec: 1000 * this.n,
      bytesOutPerSec: 2000,
    });
    return {
      header: {
        id: 1,
        listen: '127.0.0.1:7401',
        dir: '/tmp/a',
        files: 100_000,
        bytes: 1 << 30,
        nextSeq: this.n,
        digest: 'abcdef0123456789',
        syncState: 'syncing',
      },
      peers: [peer(2), peer(3), peer(4)],
      origins: [1, 2, 3, 4].map((node) => ({ node, covered: this.n % 100, known: 100 })),
      transfers: Array.from({ length: 5 }, (_, i) => ({
        path: `f${i}.bin`,
        bytesDone: this.n * 1000,
        size: 1e9,
        bytesPerSec: 1e8,
      })),
      events: Array.from({ length: 200 }, (_, i) => ({
        timeMs: Date.now(),
        kind: 'applied',
        text: `path/${this.n}/${i}.txt`,
      })),
    };
  }
}

/** An off-screen terminal that counts what the UI draws. */
class Screen extends Writable {
  columns = 160;
  rows = 50;
  isTTY = true;
  bytes = 0;
  override _write(c: Buffer | string, _e: unknown, cb: () => void): void {
    this.bytes += c.length;
    cb();
  }
}

async function measure(
  withTui: boolean,
): Promise<{ p50: number; p99: number; max: number; drawn: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const screen = new Screen();
  const app = withTui
    ? render(<App source={new BusySource()} refreshMs={REFRESH_MS} />, {
        stdout: screen as unknown as NodeJS.WriteStream,
        patchConsole: false,
        exitOnCtrlC: false,
      })
    : null;
  h.enable();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  h.disable();
  app?.unmount();
  return {
    p50: h.percentile(50) / 1e6,
    p99: h.percentile(99) / 1e6,
    max: h.max / 1e6,
    drawn: screen.bytes,
  };
}

const without: number[][] = [];
const withUi: number[][] = [];
const drawnKiB: number[] = [];
for (let r = 0; r < REPEAT; r++) {
  const a = await measure(false);
  const b = await measure(true);
  without.push([a.p50, a.p99, a.max]);
  withUi.push([b.p50, b.p99, b.max]);
  if (b.drawn === 0) throw new Error('the UI drew nothing');
  drawnKiB.push(b.drawn / 1024 / SECONDS);
}
const col = (xs: number[][], i: number): number => median(xs.map((x) => x[i]!));
console.log(`event-loop delay, medians of ${REPEAT} runs of ${SECONDS} s (ms): p50 / p99 / max`);
console.log(
  `  without TUI  ${fmt(col(without, 0), 2)} / ${fmt(col(without, 1), 2)} / ${fmt(col(without, 2), 2)}`,
);
console.log(
  `  with TUI     ${fmt(col(withUi, 0), 2)} / ${fmt(col(withUi, 1), 2)} / ${fmt(col(withUi, 2), 2)}  (${fmt(median(drawnKiB))} KiB/s drawn)`,
);
await record('tui.jsonl', {
  repeat: REPEAT,
  seconds: SECONDS,
  without: without.map((x) => x),
  with: withUi,
});
process.exit(0);
