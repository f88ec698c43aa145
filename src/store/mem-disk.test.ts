import { describe, expect, it } from 'vitest';
import { WaveNode } from '../node/index.js';
import { MemStoreDisk } from './mem-disk.js';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

describe('MemStoreDisk', () => {
  it('keeps across a crash only synced bytes (and as much of a torn tail as asked)', async () => {
    const mem = new MemStoreDisk();
    const d = mem.view();
    await d.mkdirp('/x');
    const f = await d.open('/x/f', 'wx');
    await d.fsyncDir('/x');
    await f.writev([Buffer.from('abc')], 0);
    await f.sync();
    await f.writev([Buffer.from('defgh')], 3);
    expect((await d.readFile('/x/f')).toString()).toBe('abcdefgh');
    mem.crash((unsynced) => unsynced - 2);
    const after = mem.view();
    expect((await after.readFile('/x/f')).toString()).toBe('abcdef');
    mem.crash(); // what a crash left is on the platter: the next one keeps it
    expect((await mem.view().readFile('/x/f')).toString()).toBe('abcdef');
  });

  it('makes a create, rename or remove durable only with its directory', async () => {
    const mem = new MemStoreDisk();
    const d = mem.view();
    await d.mkdirp('/x');
    const f = await d.open('/x/a', 'w');
    await f.append(Buffer.from('A'));
    await f.sync();
    mem.crash();
    expect(await mem.view().readdir('/x')).toEqual([]); // the file was synced, its name not
    const d2 = mem.view();
    const g = await d2.open('/x/a', 'w');
    await g.append(Buffer.from('A'));
    await g.sync();
    await d2.fsyncDir('/x');
    await d2.rename('/x/a', '/x/b');
    mem.crash();
    expect(await mem.view().readdir('/x')).toEqual(['a']);
    const d3 = mem.view();
    await d3.rename('/x/a', '/x/b');
    await d3.fsyncDir('/x');
    await d3.remove('/x/b');
    mem.crash();
    expect((await mem.view().readFile('/x/b')).toString()).toBe('A');
  });

  it('never answers a process that died, even for a call made before the crash', async () => {
    const mem = new MemStoreDisk();
    const pending: (() => void)[] = [];
    const d = mem.view((fn) => pending.push(fn));
    await d.mkdirp('/x');
    const f = await d.open('/x/a', 'w');
    await f.append(Buffer.from('A'));
    let answered = false;
    void f.sync().finally(() => (answered = true));
    mem.crash();
    for (const fn of pending) fn();
    void d.readdir('/x').finally(() => (answered = true));
    await settle();
    expect(answered).toBe(false);
  });

  it('writes inline what appendSync is given: kept by a kill, refused to a dead process', async () => {
    const mem = new MemStoreDisk();
    const d = mem.view();
    await d.mkdirp('/x');
    const f = await d.open('/x/j', 'w');
    f.appendSync(Buffer.from('ab'));
    f.appendSync(Buffer.from('c')); // after what it wrote before
    mem.kill(); // the page cache survives
    expect((await mem.view().readFile('/x/j')).toString()).toBe('abc');
    expect(() => f.appendSync(Buffer.from('d'))).toThrow('EBADF');
    expect((await mem.view().readFile('/x/j')).toString()).toBe('abc');
  });

  it('fails the calls it is told to, with their errno code', async () => {
    const mem = new MemStoreDisk();
    const d = mem.view();
    await d.mkdirp('/x');
    mem.fail('sync', '/x/', 'EIO');
    const f = await d.open('/x/a', 'w');
    await expect(f.sync()).rejects.toMatchObject({ code: 'EIO' });
    await expect(f.sync()).resolves.toBeUndefined();
    await expect(d.open('/nowhere/a', 'w')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

/** A device whose answers wait until `pump` lets them through, until a promise settles. */
function device() {
  const answers: (() => void)[] = [];
  const pump = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    void p.finally(() => (done = true)).catch(() => undefined);
    while (!done) {
      await settle();
      for (const fn of answers.splice(0)) fn();
    }
    return p;
  };
  return { answers, pump };
}

describe('WaveNode on MemStoreDisk', () => {
  it('keeps every acknowledged write across crashes that tear the WAL tail', async () => {
    const mem = new MemStoreDisk();
    const { answers, pump } = device();
    const acked = new Map<string, string>();
    /** Values written later than a key's acknowledged one, not acknowledged: they may survive. */
    const unacked = new Map<string, Set<string>>();
    const holds = (node: WaveNode): void => {
      for (const [k, v] of acked) {
        const got = Buffer.from(node.get(k)!).toString();
        if (got !== v) expect(unacked.get(k)).toContain(got);
      }
    };
    const seqs: number[] = [];
    let cuts = 0;
    for (let life = 0; life < 4; life++) {
      const disk = mem.view((fn) => answers.push(fn));
      const node = await pump(WaveNode.open({ dataDir: '/data', disk, walMaxBytes: 1500 }));
      if (node.recovery.cut) cuts++;
      holds(node);
      const write = (i: number): Promise<void> => {
        const k = `k${(life * 7 + i) % 40}`;
        const v = `${life}:${i}`;
        if (!unacked.has(k)) unacked.set(k, new Set());
        unacked.get(k)!.add(v);
        return node.put(k, Buffer.from(v)).then((e) => {
          acked.set(k, v);
          unacked.get(k)!.delete(v);
          seqs.push(e.meta.seq);
        });
      };
      await pump(Promise.all(Array.from({ length: 20 }, (_, i) => write(i))));
      // Ten more are written but not synced when the machine dies, half their bytes on disk.
      for (let i = 20; i < 30; i++) void write(i);
      await settle();
      answers.length = 0;
      mem.crash((n) => Math.floor(n / 2)); // the dead process's promises never settle
    }
    const node = await pump(WaveNode.open({ dataDir: '/data', disk: mem.view() }));
    holds(node);
    expect(new Set(seqs).size).toBe(seqs.length); // no seq was ever stamped twice
    expect(cuts + (node.recovery.cut ? 1 : 0)).toBeGreaterThan(0); // torn tails were cut
    await pump(node.close());
  });

  it('keeps what a restart after kill -9 replayed, and what it wrote after, through a power cut', async () => {
    const mem = new MemStoreDisk();
    const { answers, pump } = device();
    const open = () =>
      pump(WaveNode.open({ dataDir: '/data', disk: mem.view((fn) => answers.push(fn)) }));
    const first = await open();
    await pump(first.put('a', Buffer.from('acked')));
    void first.put('b', Buffer.from('logged, not synced'));
    await settle();
    answers.length = 0;
    mem.kill(); // its write is in the page cache
    const second = await open();
    expect(Buffer.from(second.get('b')!).toString()).toBe('logged, not synced');
    await pump(second.put('c', Buffer.from('acked after the restart')));
    mem.crash((n) => n - 3); // the power goes: a torn tail where the page cache had more
    const third = await open();
    expect(Buffer.from(third.get('a')!).toString()).toBe('acked');
    expect(Buffer.from(third.get('c')!).toString()).toBe('acked after the restart');
    await pump(third.close());
  });
});
