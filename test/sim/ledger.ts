import { compareMeta, type Meta, type NodeId, type StateOp } from '../../src/core/index.js';
import { sha256 } from '../../src/filesync/hasher.js';
import { conflictOrigin, FILE_PREFIX, isConflictCopy, pathOf } from '../../src/filesync/paths.js';
import {
  decodeRecord,
  descendsFrom,
  type FileRecord,
  type Version,
} from '../../src/filesync/record.js';

const vkey = (v: Version): string => `${v[0]}:${v[1]}`;

/** A file version some node published and made durable. */
interface Published {
  rel: string;
  version: Version;
  record: FileRecord;
  meta: Meta;
}

/**
 * What the simulated users did and what each node published in its own name, for the mirror
 * simulator's invariants: a node publishes only what its user did (no received version taken
 * for a local edit), and no published write is lost (each is an ancestor of the path's final
 * version, or kept in a conflict copy).
 */
export class Ledger {
  /** machine → `path\0hash` its user wrote, and paths its user deleted. */
  private readonly wrote = new Map<NodeId, Set<string>>();
  private readonly deleted = new Map<NodeId, Set<string>>();
  /** Every version published anywhere (origin:seq → it). */
  private readonly versions = new Map<string, Published>();
  /**
   * Every version any node made durable, its origin's or a copy: a version a peer holds may
   * never become durable at its origin (killed before its group commit), and a kept edit
   * names it as `prev` (kills-only seed 444).
   */
  private readonly known = new Map<string, Published>();
  private readonly problems: string[] = [];
  private readonly replacedByUser = new Set<string>();
  /** `path\0hash` some disk made durable (synced or written back): from then on it must live. */
  private readonly durableContent = new Set<string>();
  /** machine\0path → the content its user removed there, until the node publishes the delete. */
  private readonly pendingDeletes = new Map<string, string>();
  /** `path\0hash` a user removed → the deletes its node published of it. */
  private readonly deletes = new Map<string, Published[]>();

  userWrote(m: NodeId, rel: string, data: Buffer): void {
    const hash = sha256(data);
    setOf(this.wrote, m).add(`${rel}\0${hash}`);
    // The same content put back by a user (a file moved back) is no delete undone.
    this.deletes.delete(`${rel}\0${hash}`);
    this.pendingDeletes.delete(`${m}\0${rel}`);
  }

  /** A disk made `rel` holding `hash` durable. */
  madeDurable(rel: string, hash: string): void {
    this.durableContent.add(`${rel}\0${hash}`);
  }

  /**
   * Whether `rel` holding `hash` must still exist somewhere: some disk made it durable, and no
   * user replaced or removed it (a user who overwrites the last copy saw it).
   */
  mustLive(rel: string, hash: string): boolean {
    const id = `${rel}\0${hash}`;
    return this.durableContent.has(id) && !this.replacedByUser.has(id);
  }

  /** A user replaced or removed the content `hash` at `rel` (so it saw it: not lost). */
  userReplaced(rel: string, hash: string): void {
    this.replacedByUser.add(`${rel}\0${hash}`);
  }

  /** A user removed `rel`, holding content `hash`, on machine `m`. */
  userDeleted(m: NodeId, rel: string, hash: string): void {
    setOf(this.deleted, m).add(rel);
    this.pendingDeletes.set(`${m}\0${rel}`, hash);
  }

  /** A write made durable on machine `m` (its own, or a peer's it stored). */
  durable(m: NodeId, op: StateOp): void {
    if (op.type !== 'set' || op.entry.value === null) return;
    const rel = pathOf(op.entry.key);
    const record = decodeRecord(op.entry.value);
    if (rel === null || record === null || !op.entry.key.startsWith(FILE_PREFIX)) return;
    const version: Version = [op.entry.meta.node, op.entry.meta.seq];
    const published = { rel, version, record, meta: op.entry.meta };
    if (!this.known.has(vkey(version))) this.known.set(vkey(version), published);
    if (op.entry.meta.node !== m || this.versions.has(vkey(version))) return; // a copy, a replay
    this.versions.set(vkey(version), published);
    if (record.type === 'file' && !isConflictCopy(rel) && !this.keptEdit(rel, record)) {
      if (!setOf(this.wrote, m).has(`${rel}\0${record.hash}`))
        this.problem(`node ${m} published ${rel}@${vkey(version)}: content its user never wrote`);
    }
    const gone = this.pendingDeletes.get(`${m}\0${rel}`);
    if (record.type === 'deleted' && gone !== undefined) {
      const id = `${rel}\0${gone}`;
      this.deletes.set(id, [...(this.deletes.get(id) ?? []), published]);
      this.pendingDeletes.delete(`${m}\0${rel}`);
    }
    if (
      // (Copies are removed by the applier too: one too many, or beyond --max-conflicts.)
      record.type === 'deleted' &&
      !isConflictCopy(rel) &&
      !setOf(this.deleted, m).has(rel)
    ) {
      this.problem(`node ${m} published a delete of ${rel}@${vkey(version)} its user never made`);
    }
  }

  /**
   * Paths back with content a user removed and whose delete was published, unless that delete
   * was overruled: a write that never saw it (a new file, or a delete of other content) won
   * over it. Last-write-wins between concurrent writes is the design's; what follows, such as
   * a peer that only ever saw the deleted content keeping it over a blind delete, is not a
   * delete undone. A write of the same content winning over it is (a kept edit).
   */
  resurrected(tree: Map<string, string>): string[] {
    return [...tree]
      .filter(([rel, hash]) =>
        (this.deletes.get(`${rel}\0${hash}`) ?? []).some((d) => !this.overruled(d, hash)),
      )
      .map(([r]) => r);
  }

  /**
   * A conflict copy made afresh (no `prev`) is blind too, even with the same content: every
   * holder of the clash's losing version makes it when it learns of the clash, and one that
   * had not yet seen a user's delete of the copy makes it again (seed 316), as Syncthing does.
   */
  private overruled(d: Published, hash: string): boolean {
    return [...this.versions.values()].some(
      (p) =>
        p.rel === d.rel &&
        (p.record.hash !== hash || (isConflictCopy(p.rel) && p.record.prev === null)) &&
        compareMeta(p.meta, d.meta) > 0 &&
        !descendsFrom(p.record, d.version),
    );
  }

  /**
   * A version published again over a delete that did not see it (the applier's kept edit):
   * any holder does so, whoever wrote it.
   */
  private keptEdit(rel: string, r: FileRecord): boolean {
    const prev = r.prev === null ? undefined : this.known.get(vkey(r.prev));
    if (prev?.record.type !== 'deleted') return false;
    return [...this.known.values()].some((p) => p.rel === rel && p.record.hash === r.hash);
  }

  private problem(msg: string): void {
    if (this.problems.length < 5) this.problems.push(msg);
  }

  get firstProblem(): string | null {
    return this.problems[0] ?? null;
  }

  /**
   * No published file version lost: each was seen and replaced by a later version (an edit or
   * a delete that names it as an ancestor) or by a user, is its path's final version, or its
   * content is kept at the path or in a conflict copy of it, once any disk made it durable
   * (a user's write the power took before its disk wrote it back was never the mirror's). `finals`: each path's final version;
   * `tree`: paths → content hash.
   */
  lostWrites(
    finals: Iterable<Version>,
    tree: Map<string, string>,
    /** Paths the final rules ignore: each node keeps its own there. */
    ignored: (rel: string, isDir: boolean) => boolean = () => false,
  ): string[] {
    const replaced = new Set<string>([...finals].map(vkey));
    for (const p of this.versions.values()) {
      if (p.record.prev !== null) replaced.add(vkey(p.record.prev));
      for (const h of p.record.history) replaced.add(vkey(h));
    }
    const copies = new Map<string, Set<string>>();
    for (const [rel, hash] of tree)
      if (isConflictCopy(rel)) setOf(copies, conflictOrigin(rel)).add(hash);
    // Content, not versions: a kept edit publishes the same content again under new versions,
    // and any of them seen and replaced means the content was.
    const fate = new Map<string, { replaced: boolean; first: string }>();
    for (const [k, p] of this.versions) {
      if (p.record.type !== 'file' || ignored(p.rel, false)) continue;
      const id = `${p.rel}\0${p.record.hash}`;
      const f = fate.get(id) ?? { replaced: this.replacedByUser.has(id), first: `${p.rel}@${k}` };
      f.replaced ||= replaced.has(k);
      fate.set(id, f);
    }
    const lost: string[] = [];
    for (const [id, f] of fate) {
      const [rel, hash] = id.split('\0') as [string, string];
      const kept = tree.get(rel) === hash || copies.get(rel)?.has(hash) === true;
      // Content no disk ever made durable is lost by a power cut with nothing to answer for.
      if (!f.replaced && !kept && this.durableContent.has(id)) lost.push(f.first);
    }
    return lost;
  }
}

function setOf<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  return s;
}
