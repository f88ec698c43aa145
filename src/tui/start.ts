import { render } from 'ink';
import { createElement } from 'react';
import { App } from './App.js';
import type { StatusSource } from './model.js';

/** How often an idle node's heap is collected in full (see `idleCollector`). */
export const IDLE_GC_INTERVAL_MS = 30_000;

export interface StartOptions {
  source: StatusSource;
  /** Nothing to sync, apply or transfer: a full GC now costs no one anything. */
  idle: () => boolean;
  onQuit: () => void;
  /** A full GC (`globalThis.gc` under `--expose-gc`); none means no idle collection. */
  gc?: () => void;
  gcIntervalMs?: number;
  /** Where to draw (tests); the process's stdout otherwise. */
  stdout?: NodeJS.WriteStream;
}

/**
 * Draw the UI until the returned function is called. The build bundles this module with Ink and
 * React into one file (scripts/bundle-tui.mjs): loaded as packages, they cost a TUI node its
 * RSS budget (docs/decisions.md).
 */
export function startTui(o: StartOptions): () => void {
  const app = render(createElement(App, { source: o.source, onQuit: o.onQuit }), {
    exitOnCtrlC: false,
    // A terminal of its own (a test's) is not where the process's console writes.
    ...(o.stdout && { stdout: o.stdout, patchConsole: false }),
  });
  const stopGc = idleCollector(o.idle, o.gc, o.gcIntervalMs ?? IDLE_GC_INTERVAL_MS);
  return () => {
    stopGc();
    app.unmount();
  };
}

/**
 * V8 collects the old generation when it grows or after a major GC, and an idle UI's polling
 * promotes a little garbage every second without ever triggering either, so its RSS crept up.
 * A full GC while idle keeps it at the live heap.
 */
export function idleCollector(
  idle: () => boolean,
  gc: (() => void) | undefined,
  intervalMs: number,
): () => void {
  if (!gc) return () => {};
  const t = setInterval(() => {
    if (idle()) gc();
  }, intervalMs);
  t.unref();
  return () => clearInterval(t);
}
