import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { App } from './App.js';
import type { PeerModel, StatusSource, TuiModel } from './model.js';

function peer(id: number, covered: number, total: number, connected = true): PeerModel {
  return {
    id,
    address: `127.0.0.1:${7400 + id}`,
    connected,
    lastRoundAgeMs: 200,
    rttMs: 1,
    oursCovered: covered,
    oursTotal: total,
    theirsCovered: total,
    theirsTotal: total,
    digestAgrees: covered === total,
    bytesInPerSec: 100,
    bytesOutPerSec: 2048,
  };
}

/** A status source the test moves by hand. */
class FakeSource implements StatusSource {
  model: TuiModel = {
    header: {
      id: 1,
      device: 'ABCDEFGH-IJKLMNOP-QRSTUVWX-YZ234567-ABCDEFGH-IJKLMNOP',
      listen: '127.0.0.1:7401',
      dir: '/tmp/a',
      files: 3,
      bytes: 4096,
      nextSeq: 11,
      digest: 'abcdef0123456789',
      syncState: 'syncing',
    },
    peers: [peer(2, 5, 10)],
    origins: [{ node: 1, covered: 10, known: 10 }],
    transfers: [{ path: 'big.bin', bytesDone: 256, size: 1024, bytesPerSec: 1_048_576 }],
    events: [{ timeMs: 0, kind: 'applied', text: 'x.txt (file)' }],
  };
  snapshot(): TuiModel {
    return this.model;
  }
}

const tick = (ms = 60): Promise<void> => new Promise((r) => setTimeout(r, ms));
const waitUntil = async (cond: () => boolean): Promise<void> => {
  const deadline = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('UI never showed the expected frame');
    await tick(10);
  }
};

describe('TUI', () => {
  it('shows the header, peers with seq progress, origins, transfers and events; bars move', async () => {
    const src = new FakeSource();
    const ui = render(<App source={src} refreshMs={20} />);
    const frame = (): string => ui.lastFrame() ?? '';
    expect(frame()).toContain('node 1 on 127.0.0.1:7401');
    expect(frame()).toContain('device ABCDEFGH-IJKLMNOP-QRSTUVWX-YZ234567-ABCDEFGH-IJKLMNOP');
    expect(frame()).toMatch(/ours .* 50%/);
    expect(frame()).toMatch(/big\.bin/);
    expect(frame()).toMatch(/ 25%/);
    expect(frame()).toContain('applied   x.txt (file)');
    src.model = {
      ...src.model,
      peers: [peer(2, 10, 10)],
      header: { ...src.model.header, syncState: 'in sync' },
    };
    await waitUntil(() => /ours .*100%/.test(frame()) && frame().includes('in sync'));
    expect(frame()).not.toContain('unreadable');
    src.model = {
      ...src.model,
      header: { ...src.model.header, problems: '3 unreadable · 2 failing' },
    };
    await waitUntil(() => frame().includes('in sync · 3 unreadable · 2 failing'));
    ui.unmount();
  });

  it('peers appear and disappear', async () => {
    const src = new FakeSource();
    const ui = render(<App source={src} refreshMs={20} />);
    const frame = (): string => ui.lastFrame() ?? '';
    src.model = { ...src.model, peers: [peer(2, 10, 10), peer(3, 1, 10)] };
    await waitUntil(() => frame().includes('127.0.0.1:7403'));
    src.model = { ...src.model, peers: [peer(3, 1, 10, false)] };
    await waitUntil(() => !frame().includes('127.0.0.1:7402') && frame().includes('○'));
    src.model = { ...src.model, peers: [] };
    await waitUntil(() => frame().includes('no peers yet'));
    ui.unmount();
  });

  it('fits bars to the terminal width and follows a resize', async () => {
    const src = new FakeSource();
    const ui = render(<App source={src} refreshMs={20} />);
    const bar = (): number => /ours ([█░]+)/.exec(ui.lastFrame() ?? '')?.[1]?.length ?? 0;
    const before = bar();
    const stdout = ui.stdout as unknown as { emit: (e: string) => void };
    Object.defineProperty(stdout, 'columns', { get: () => 60, configurable: true });
    stdout.emit('resize');
    await waitUntil(() => bar() > 0 && bar() < before);
    ui.unmount();
  });

  it('fits 80×24 with no line wrapped, and a disconnected peer shows no rates', async () => {
    const src = new FakeSource();
    src.model = {
      ...src.model,
      header: { ...src.model.header, dir: '/a/very/long/path/'.repeat(5) },
      peers: [peer(2, 5, 10), peer(3, 10, 10), peer(4, 1, 10, false)],
      origins: [1, 2, 3].map((node) => ({ node, covered: 5, known: 10 })),
      events: Array.from({ length: 50 }, (_, i) => ({
        timeMs: i,
        kind: 'applied',
        text: `some/deep/path/${'x'.repeat(i * 3)}.txt (file)`,
      })),
    };
    const ui = render(<App source={src} refreshMs={20} size={{ columns: 80, rows: 24 }} />);
    const lines = (): string[] => (ui.lastFrame() ?? '').split('\n');
    await waitUntil(() => lines().some((l) => l.includes('disconnected')));
    expect(lines().length).toBeLessThan(24);
    for (const l of lines()) expect(l.length, l).toBeLessThanOrEqual(80);
    const off = lines().find((l) => l.includes('disconnected'))!;
    expect(off).not.toMatch(/\/s/);
    ui.unmount();
  });

  it('draws nothing new for changes it does not show (an idle link’s chatter)', async () => {
    const src = new FakeSource();
    let snapshots = 0;
    const counting: StatusSource = { snapshot: () => (snapshots++, src.snapshot()) };
    const ui = render(<App source={counting} refreshMs={5} />);
    await waitUntil(() => snapshots > 2);
    const drawn = ui.frames.length;
    // What an idle pair's rounds change every second: rtt by a ms, the round's age, the rates
    // by a byte. None of it changes what the screen shows.
    for (let i = 0; i < 20; i++) {
      const p = { ...peer(2, 5, 10), rttMs: 1 + (i % 3), lastRoundAgeMs: i * 50 };
      src.model = { ...src.model, peers: [{ ...p, bytesInPerSec: 200 + (i % 2) }] };
      const seen = snapshots;
      await waitUntil(() => snapshots > seen);
    }
    expect(ui.frames.length).toBe(drawn);
    expect(ui.lastFrame()).toContain('rtt  <5 ms');
    // A change it shows is drawn.
    src.model = { ...src.model, peers: [{ ...peer(2, 5, 10), lastRoundAgeMs: 9000 }] };
    await waitUntil(() => (ui.lastFrame() ?? '').includes('round    9 s'));
    ui.unmount();
  });

  it('q quits', async () => {
    let quit = false;
    const ui = render(<App source={new FakeSource()} onQuit={() => (quit = true)} />);
    // Keys read before the input hook attaches are lost: press until it answers (bounded).
    await waitUntil(() => {
      if (!quit) ui.stdin.write('q');
      return quit;
    });
    ui.unmount();
  });
});
