/**
 * A young-generation GC (scavenge) for every SCAVENGE_EVERY_BYTES of frames through the
 * process, in and out: a frame's bytes live outside V8's heap behind a small Buffer object, so
 * V8 would collect a large transfer's dead frames only once JS objects filled the young
 * generation (figures in docs/decisions.md). Needs `gc` (node --expose-gc, on
 * bin/filesync.cjs's shebang line); without it, a no-op.
 */
export const SCAVENGE_EVERY_BYTES = 8 * 1024 * 1024;

/** V8's gc extension, as `--expose-gc` installs it. */
export type GcFunction = (options: { type: 'minor' | 'major' }) => void;

export class Scavenger {
  private bytes = 0;
  /** Scavenges asked for so far. */
  scavenges = 0;

  /** `gc`: the function to call; by default the global one, looked up at each use. */
  constructor(
    private readonly gc: GcFunction | null | undefined = undefined,
    private readonly everyBytes = SCAVENGE_EVERY_BYTES,
  ) {}

  /** `n` more bytes of frames went through (in or out). */
  note(n: number): void {
    const gc = this.gc === undefined ? (globalThis as { gc?: GcFunction }).gc : this.gc;
    if (!gc) return;
    this.bytes += n;
    if (this.bytes < this.everyBytes) return;
    this.bytes = 0;
    this.scavenges++;
    gc({ type: 'minor' });
  }
}

/** One per process: the transports of a process share its heap. */
export const scavenger = new Scavenger();
