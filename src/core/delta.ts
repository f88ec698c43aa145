import { entryWireBytes } from './limits.js';
import type { OriginIndex } from './origin-index.js';
import type { Entry, NodeId, ReadonlyAcks } from './types.js';
import type { KeptEntry } from './value-arena.js';

/** Where a delta page stops: the last (origin, seq) it included. */
export interface DeltaCursor {
  readonly node: NodeId;
  readonly seq: number;
}

export interface DeltaPage {
  readonly entries: Entry[];
  /** True when nothing above the acks is left after this page. */
  readonly complete: boolean;
  /** Resume point for the next page when not complete. */
  readonly next: DeltaCursor | null;
}

export interface DeltaOptions {
  maxEntries: number;
  maxBytes: number;
  after?: DeltaCursor | null;
  /**
   * Leave out entries the peer with this source id holds: those it sent (`setSource`) and those
   * it confirmed (`confirmHeld`).
   */
  skipSource?: number | undefined;
}

/**
 * Live entries (tombstones included) whose seq is above `acks[origin]`, ordered by
 * (origin, seq) and cut into pages by entry count and bytes. A bootstrap is the delta
 * against empty acks.
 */
export function deltaPage(
  origins: OriginIndex,
  /** The winning entry of a key the origin index names. */
  get: (key: string) => KeptEntry,
  /** The entries the peer being skipped confirmed holding. */
  held: ReadonlySet<Entry> | undefined,
  acks: ReadonlyAcks,
  opts: DeltaOptions,
): DeltaPage {
  const entries: Entry[] = [];
  let bytes = 0;
  const after = opts.after ?? null;
  const skip = opts.skipSource;
  for (const node of origins.origins()) {
    if (after !== null && node < after.node) continue;
    let from = acks.get(node) ?? 0;
    if (after !== null && node === after.node) from = Math.max(from, after.seq);
    for (const [seq, key] of origins.above(node, from)) {
      const e = get(key);
      if (skip !== undefined && (e.source === skip || held?.has(e) === true)) continue;
      const cost = entryWireBytes(e);
      if (
        entries.length > 0 &&
        (entries.length >= opts.maxEntries || bytes + cost > opts.maxBytes)
      ) {
        const last = entries[entries.length - 1]!.meta;
        return { entries, complete: false, next: { node: last.node, seq: last.seq } };
      }
      if (e.meta.seq !== seq) throw new Error(`origin index out of step for ${node}:${seq}`);
      entries.push(e);
      bytes += cost;
    }
  }
  return { entries, complete: true, next: null };
}
