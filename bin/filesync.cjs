#!/usr/bin/env -S node --max-semi-space-size=4 --expose-gc --initial-old-space-size=48 --no-concurrent-recompilation
// The filesync command. Runs the compiled output (dist/, built by `npm ci` through `prepare`)
// when it is at least as new as every source file, else the TypeScript sources through tsx, so
// it never runs stale code. Each setting below is explained, with its figures, in
// docs/decisions.md; a value given on node's own command line wins.
//
// CommonJS on purpose: an ES-module entry's first file read starts libuv's thread pool before
// UV_THREADPOOL_SIZE below could be set.
'use strict';
const { readdirSync, statSync } = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const v8 = require('node:v8');

// Every fs call (fsync above all) holds a pool thread: 64 match the applier's 64 applies.
process.env.UV_THREADPOOL_SIZE ??= '64';

// The old generation grows to 1.5× what survived the last full GC, not 4×: RSS stays near the
// live heap. (The shebang's `--initial-old-space-size=48` keeps large transfers from running
// a full GC per few blocks; `--max-semi-space-size=4` sizes the young generation.)
if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) {
  v8.setFlagsFromString('--heap-growing-percent=50');
}

// Optimise only what stays hot: a node's work comes in bursts, and early TurboFan compiles
// were a quarter of its CPU.
if (!process.execArgv.some((a) => a.startsWith('--interrupt-budget'))) {
  v8.setFlagsFromString('--interrupt-budget=270336');
}

// Shebang: `--expose-gc` lets the transport ask for a young-generation GC per 8 MiB of frames
// (src/transport/scavenger.ts); `--no-concurrent-recompilation` keeps TurboFan's zones out of
// a worker's malloc arena, which kept them resident.

// React (the TUI) is several times slower in development mode.
process.env.NODE_ENV ??= 'production';
// msgpackr's native string decoder costs ~6 MiB of RSS per node for little speed here.
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
