import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WaveNode } from '../../src/node/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

const CHILD = path.join(import.meta.dirname, 'put-child.ts');
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir('wavekv-kill-')));
afterAll(async () => cleanup());

/** Run the child until it has reported `target` puts (or more), then SIGKILL it by pid. */
async function runAndKill(run: number, target: number): Promise<Map<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(run)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FILESYNC_LOG_LEVEL: 'error' },
  });
  const reported = new Map<string, number>();
  let buf = '';
  let stderr = '';
  let exited = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const [key, seq] = buf.slice(0, nl).split(' ');
      buf = buf.slice(nl + 1);
      if (seq !== undefined) reported.set(key!, Number(seq));
    }
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const closed = new Promise<void>((r) => child.on('close', () => ((exited = true), r())));
  try {
    await waitFor(
      () => reported.size >= target || exited,
      `child to report ${target} puts`,
      30_000,
    );
    if (exited) throw new Error(`child exited early: ${stderr}`);
  } finally {
    if (!exited) process.kill(child.pid!, 'SIGKILL');
    await closed;
  }
  return reported;
}

describe('SIGKILL during awaited puts', () => {
  it('keeps every resolved put and never reissues a seq, over 20 kills', async () => {
    const allSeqs = new Set<number>();
    const all = new Map<string, number>();
    let rnd = 12345;
    const next = (): number => (rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0);
    for (let run = 0; run < 20; run++) {
      const reported = await runAndKill(run, 1 + (next() % 400));
      for (const [key, seq] of reported) {
        expect(allSeqs.has(seq), `seq ${seq} reissued (key ${key})`).toBe(false);
        allSeqs.add(seq);
        all.set(key, seq);
      }
      const node = await WaveNode.open({ dataDir: dir });
      for (const [key, seq] of all) {
        const e = node.getEntry(key);
        expect(e?.meta.seq, `resolved put ${key} lost after kill ${run}`).toBe(seq);
      }
      const maxSeq = Math.max(...allSeqs);
      const probe = await node.put(`probe-${run}`, Buffer.from('p'));
      expect(probe.meta.seq).toBeGreaterThan(maxSeq);
      allSeqs.add(probe.meta.seq);
      all.set(`probe-${run}`, probe.meta.seq);
      // Alternate clean closes and crash-like exits so both recovery paths are exercised.
      if (run % 2 === 0) await node.close();
      else node.abandon();
    }
    expect(all.size).toBeGreaterThan(20);
  }, 240_000);
});
