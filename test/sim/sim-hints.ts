import type { HintHooks, Hints } from '../../src/filesync/options.js';

/**
 * The watcher's stand-in under the simulator: the world tells it what a user changed, and it
 * passes that on as chokidar would, late, or drops it (the next rescan finds the change), or
 * overflows (the engine rescans everything soon).
 */
export class SimHints implements Hints {
  private open = false;

  constructor(
    readonly onHint: (rel: string) => void,
    readonly hooks: HintHooks,
  ) {}

  start(): Promise<void> {
    this.open = true;
    return Promise.resolve();
  }

  refresh(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.open = false;
    return Promise.resolve();
  }

  /** A user changed `rel`: `fate` says whether its hint comes, is lost, or overflows. */
  changed(rel: string, fate: 'hint' | 'lost' | 'overflow'): void {
    if (!this.open || fate === 'lost') return;
    if (fate === 'overflow') this.hooks.onOverflow();
    else this.onHint(rel);
  }
}
