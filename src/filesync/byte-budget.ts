/**
 * A bound on bytes held at once by work that starts many times concurrently (hashes of large
 * files, blocks of downloads). `acquire` waits until the bytes fit; one holder always runs,
 * however large, so nothing waits forever. Waiters are woken together and look again: several
 * small ones may fit where one large one was. A few lines, so no dependency for it.
 */
export class ByteBudget {
  private heldBytes = 0;
  private waiting: (() => void)[] = [];

  constructor(readonly maxBytes: number) {}

  /** Bytes held now. */
  get held(): number {
    return this.heldBytes;
  }

  /** Wait for room for `bytes`; the function returned gives them back (call it once). */
  async acquire(bytes: number): Promise<() => void> {
    while (this.heldBytes > 0 && this.heldBytes + bytes > this.maxBytes)
      await new Promise<void>((r) => this.waiting.push(r));
    this.heldBytes += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.heldBytes -= bytes;
      for (const wake of this.waiting.splice(0)) wake();
    };
  }
}
