import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Append one JSON line per result under bench/results/. */
export async function record(file: string, row: Record<string, unknown>): Promise<void> {
  const dir = path.join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  await appendFile(
    path.join(dir, file),
    JSON.stringify({ time: new Date().toISOString(), ...row }) + '\n',
  );
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) && n > 0 ? n : dflt;
}

/** Run `fn` in a fresh temp dir that is removed afterwards. */
export async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'wavekv-bench-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * GET a JSON document, retrying once when the request fails outright. The harness blocks its
 * event loop for seconds while it hashes trees, and a kept-alive socket the server closed
 * meanwhile can be picked before its close is seen ("fetch failed: other side closed").
 */
export async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  try {
    return await (await fetch(url, { headers })).json();
  } catch {
    return (await fetch(url, { headers })).json();
  }
}
