/**
 * A young-generation GC (scavenge) for every SCAVENGE_EVERY_BYTES of frames through the
 * process, in and out. A frame's bytes live outside V8's heap, held by a Buffer object of a
 * few dozen bytes: large frames die young, but V8 collects the young generation only once JS
 * objects fill it, and a large transfer makes few. Between collections a relay carrying b (256
 * MiB) held 30-40 MiB of dead frames, socket chunks and read buffers (anonymous memory 32 →
 * 72-85 MiB; peak RSS A / B / C 104-111 / 120-127 / 111-120 MiB). A scavenge per 8 MiB: 81-87
 * / 95-96 / 94-97 MiB, b's time and CPU the same (b probe, 3 runs each). Not much more often:
 * per 4 MiB, a relay's blocks still in flight (hashed, written, queued on the next hop's
 * socket) lived through two scavenges, were promoted to the old generation to wait for a full
 * GC, and its peak went back to 124-125 MiB. A scavenge of a young generation that holds
 * little costs well under a millisecond.
 *
 * Needs `gc` (node --expose-gc, on bin/filesync.cjs's shebang line); without it, a no-op.
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
