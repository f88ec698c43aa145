#!/usr/bin/env -S node --max-semi-space-size=4 --expose-gc --initial-old-space-size=48 --no-concurrent-recompilation
// The filesync command. Runs the compiled output (dist/, from `npm run build`, which `npm ci`
// runs through `prepare`) when it is at least as new as every source file; otherwise runs the
// TypeScript sources through tsx, so it never runs stale code. dist/ costs ~25 MiB less RSS.
//
// CommonJS on purpose: node loads a CommonJS entry with a synchronous read, an ES-module entry
// through its loader, whose first file read starts libuv's thread pool. The pool's size is read
// from UV_THREADPOOL_SIZE once, when it starts, so in an ES-module entry the setting below came
// too late and every node ran with the default 4 threads (seen: 11 threads in all, not 71).
'use strict';
const { readdirSync, statSync } = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const v8 = require('node:v8');

// Every fs call (fsync above all) holds a pool thread for its whole duration; with 4, at most
// four of the many files landing at once can be fsynced together, whatever the disk could take
// (a journaling filesystem commits concurrent fsyncs together). On this project's dev VM,
// whose fsyncs are fast, 4 and 64 gave the same bench figures (two runs each, DESIGN §11's
// workloads at 20,000 files); 64 matches the applier's 64 applies in flight. Idle RSS was
// the same within noise: the threads' stacks are touched only a few pages deep.
process.env.UV_THREADPOOL_SIZE ??= '64';

// Memory (the shebang's flag and this one; measured on a 20,000-file sync, peak RSS per node
// 146/196/181 MiB → 114/117/116, CPU time the same within noise). V8 lets the old generation
// grow up to 4× what survived the last full GC, and most of what this process allocates is
// short-lived buffers and records; 1.5× keeps RSS near the live heap. Settable at run time.
// The young generation (semi-spaces, 2 × 16 MiB by default) is sized only at start-up, hence
// `--max-semi-space-size=4` on the shebang line, which the bench and scripts reuse.
// A value given on node's own command line wins.
if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) {
  v8.setFlagsFromString('--heap-growing-percent=50');
}

// JIT: V8 optimises a function once it has run ~66 KB of bytecode ticks (--interrupt-budget).
// A node's work comes in bursts (a thousand files written at once), and in the first bursts
// after start TurboFan compiled a quarter of the CPU the three nodes used (perf, workload a
// on a fresh chain). Four times the budget optimises only what stays hot: a 1000-file sync
// 1.04–1.16 s → 0.79–0.94 s, 25–30 % less CPU per node; b and s (10,000 files) unchanged.
if (!process.execArgv.some((a) => a.startsWith('--interrupt-budget'))) {
  v8.setFlagsFromString('--interrupt-budget=270336');
}

// `--initial-old-space-size=48` (shebang line; V8 reads it only at start-up): a floor of 48 MiB
// under the old generation's limit. V8 starts a full GC when the old generation plus the
// external memory (Buffers) allocated since the last full GC reach that limit, which for a
// node's ~9 MiB live heap is ~20 MiB. A large transfer allocates a fresh 1 MiB Buffer per block
// (ws reassembling each frame, msgpack packing each answer), garbage a young GC would free
// cheaply, but young GCs come per 4 MiB of JS objects and a transfer makes few: the external
// bytes reached the limit first, and b (256 MiB through the chain) ran 54-68 full GCs, ~30 % of
// the relay's CPU. b probe, 3-5 runs each: on a fresh chain 1.57-2.0 s → 1.33-1.45 s; after a
// sync of 1000 small files, 200 edits and an rm -rf 2.0-2.8 s → 1.30-1.59 s, the relay's CPU
// 1.2-1.6 → 0.66-0.79 s. A floor of 40 MiB was not enough (1.6-1.9 s), 64 no faster than 48
// and it kept more garbage (a 10,000-file sync's peak RSS 89 → 120 MiB). Idle RSS the same
// (55.5 / 56.8 / 58.2 MiB after 30 s): an idle node's memory reducer still collects. The cost:
// a busy node's garbage waits longer (b's peak RSS 120 → 126 MiB in a pair of bench runs).

// `--expose-gc` (shebang line): the transport asks for a young-generation GC per 8 MiB of
// frames (src/transport/scavenger.ts), which frees a large transfer's dead Buffers long before
// either kind of GC would: b's peak RSS per node 104-127 → 81-97 MiB.

// `--no-concurrent-recompilation` (shebang line; V8 reads it only at start-up): TurboFan compiles
// on the main thread instead of a worker. A worker's compile zones (V8 peaked at ~6 MiB) land in
// a malloc arena of that thread, which kept 1–5 MiB of them resident for good: idle RSS was
// 56–65 MiB per node and 8 of 18 bench readings were over 60, against 55.0–56.7 in all 18 with
// the flag (later readings 54.5–60.5, most 55–58: the main thread's malloc heap keeps some of
// the zones in some runs); peak RSS of every bench workload 5–7 MiB lower; times and CPU the
// same within noise (two bench runs each: a 0.85 / 0.88 against 0.87 / 0.97 s, b 3.22 / 3.39
// against 3.40 / 3.10, s at 20,000 files 9.6 / 8.8 against 9.0 / 8.6). Three nodes share two
// cores here, so a compile on a worker had no core of its own to run on anyway.

// React (the TUI) is several times slower in development mode.
process.env.NODE_ENV ??= 'production';
// msgpackr's optional native string decoder costs ~6 MiB of RSS in every node for a speed-up
// our messages (short keys, binary values) barely see; idle RSS is a target (≤ 60 MiB).
process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';

const root = path.resolve(__dirname, '..');
const built = path.join(root, 'dist', 'cli', 'main.js');

function newestSourceMs(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (/\.test\.tsx?$/.test(e.name)) continue; // tests are not part of the build
    newest = Math.max(newest, e.isDirectory() ? newestSourceMs(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function fresh() {
  try {
    return statSync(built).mtimeMs >= newestSourceMs(path.join(root, 'src'));
  } catch {
    return false;
  }
}

async function main() {
  if (fresh()) {
    await import(pathToFileURL(built).href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import(pathToFileURL(path.join(root, 'src', 'cli', 'main.ts')).href);
  }
}

main().catch((e) => {
  // The CLI reports its own errors; this is only a failure to load it (e.g. a broken build).
  process.stderr.write(`filesync: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
