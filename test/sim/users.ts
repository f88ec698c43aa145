/**
 * The mirror simulator's users: on machines up or down they write, delete, rename and link
 * files, remove whole directories and rewrite the ignore file, and tell the ledger what they
 * did. Each edit reaches the running mirror as a watcher hint: late, lost or an overflow.
 */
import { IGNORE_FILE } from '../../src/filesync/ignore.js';
import { conflictOrigin, isConflictCopy } from '../../src/filesync/paths.js';
import { BLOCK_BYTES } from '../../src/filesync/record.js';
import type { EventQueue } from './events.js';
import { hashOf } from './hashes.js';
import type { Ledger } from './ledger.js';
import { fileCount, PATHS, ROOT, type Machine } from './machine.js';
import type { Prng } from './prng.js';

/** What the users need of the world. */
export interface UsersWorld {
  rng: Prng;
  q: EventQueue;
  ledger: Ledger;
  trace(msg: string): void;
  /** How often a write is a file of several blocks. */
  largeP: number;
  /** How often an edit rewrites the ignore file. */
  ignoreP: number;
}

export class SimUsers {
  /** Edits made so far (each names its file's content). */
  edits = 0;

  constructor(private readonly w: UsersWorld) {}

  /** A user writes or deletes a file, whether the machine's process runs or not. */
  edit(machines: Machine[]): void {
    const started = machines.filter((m) => m.started);
    if (started.length === 0) return;
    const m = this.w.rng.pick(started);
    if (this.w.rng.chance(0.03)) return this.removeDir(m);
    if (this.w.rng.chance(this.w.ignoreP)) return this.editIgnore(m);
    const rel = this.w.rng.pick(PATHS);
    const abs = `${ROOT}/${rel}`;
    const slash = rel.lastIndexOf('/');
    if (slash > 0) m.tree.mkdir(`${ROOT}/${rel.slice(0, slash)}`, { recursive: true });
    const st = m.tree.lstatIfAny(abs);
    const had = st?.isFile() === true ? hashOf(m.tree.readFile(abs)) : null;
    if (had !== null) this.w.ledger.userReplaced(rel, had);
    this.w.trace(`user m${m.id} ${st !== null ? 'has' : 'new'} ${rel} up=${m.mirror !== null}`);
    // Users never empty the whole folder: that is the mass-delete guard's case, which holds
    // every delete until an operator says otherwise (its own tests cover it).
    const last = fileCount(m.tree) <= 1;
    if (st?.isFile() === true && this.w.rng.chance(0.1)) return this.move(m, rel, had!, last);
    if (!(last && st !== null) && this.w.rng.chance(0.05)) return this.link(m, rel, st !== null);
    if (st !== null && !last && this.w.rng.chance(0.3)) {
      m.tree.remove(abs);
      this.w.trace(`user m${m.id} deletes ${rel}`);
      this.w.ledger.userDeleted(m.id, rel, had ?? '');
    } else {
      const tag = `m${m.id} edit ${++this.edits} at ${this.w.q.now}`;
      // Now and then a file of several blocks: downloads in parts, resumed after a crash, and
      // blocks found in other files (about half of them are shared between large files).
      const data = this.w.rng.chance(this.w.largeP) ? this.largeContent(tag) : Buffer.from(tag);
      m.tree.writeFile(abs, data);
      this.w.trace(`user m${m.id} writes ${rel} ${hashOf(data).slice(0, 8)}`);
      this.w.ledger.userWrote(m.id, rel, data);
    }
    this.hint(m, rel);
  }

  /** A user puts a symlink at `rel` (over the file or link there): a change of type. */
  private link(m: Machine, rel: string, there: boolean): void {
    const abs = `${ROOT}/${rel}`;
    const target = `t${this.w.rng.int(0, 3)}`;
    if (there) m.tree.remove(abs);
    m.tree.symlink(target, abs);
    this.w.trace(`user m${m.id} links ${rel} to ${target}`);
    this.hint(m, rel);
  }

  /** A user rewrites the ignore file (it syncs like any file): paths leave the mirror or join it. */
  private editIgnore(m: Machine): void {
    const data = Buffer.from(this.w.rng.pick(['', 'e\n', 'd1/\n', 'e\nd1/\n']));
    m.tree.writeFile(`${ROOT}/${IGNORE_FILE}`, data);
    this.w.trace(`user m${m.id} ignores ${JSON.stringify(data.toString())}`);
    this.w.ledger.userWrote(m.id, IGNORE_FILE, data);
    this.hint(m, IGNORE_FILE);
  }

  /** A user removes a directory and all it holds (never the last file of the folder). */
  private removeDir(m: Machine): void {
    const dir = this.w.rng.pick(['d0', 'd1']);
    const abs = `${ROOT}/${dir}`;
    if (m.tree.lstatIfAny(abs)?.isDirectory() !== true) return;
    const under = m.tree.paths(abs);
    const files = under.filter((p) => m.tree.lstat(p).isFile());
    if (fileCount(m.tree) - files.length < 1) return;
    this.w.trace(`user m${m.id} removes ${dir} and all it holds up=${m.mirror !== null}`);
    for (const p of under) {
      const rel = p.slice(ROOT.length + 1);
      const hash = m.tree.lstat(p).isFile() ? hashOf(m.tree.readFile(p)) : '';
      if (hash !== '') this.w.ledger.userReplaced(rel, hash);
      // A conflict copy thrown away: the user saw that version of the path, and let it go.
      if (hash !== '' && isConflictCopy(rel)) this.w.ledger.userReplaced(conflictOrigin(rel), hash);
      this.w.ledger.userDeleted(m.id, rel, hash);
    }
    m.tree.remove(abs);
    this.hint(m, dir);
  }

  /**
   * A user renames `rel` (holding `hash`) to another path, over whatever file is there: the
   * mirror sees a delete and a new file, whose content it finds on its own disk.
   */
  private move(m: Machine, rel: string, hash: string, last: boolean): void {
    const to = this.w.rng.pick(PATHS.filter((p) => p !== rel));
    const abs = `${ROOT}/${to}`;
    const slash = to.lastIndexOf('/');
    if (slash > 0) m.tree.mkdir(`${ROOT}/${to.slice(0, slash)}`, { recursive: true });
    const there = m.tree.lstatIfAny(abs);
    if (there !== null && (last || !there.isFile())) return; // never the last file; no dirs
    if (there !== null) this.w.ledger.userReplaced(to, hashOf(m.tree.readFile(abs)));
    this.w.trace(`user m${m.id} moves ${rel} to ${to} up=${m.mirror !== null}`);
    const data = m.tree.readFile(`${ROOT}/${rel}`);
    m.tree.rename(`${ROOT}/${rel}`, abs);
    this.w.ledger.userDeleted(m.id, rel, hash);
    this.w.ledger.userWrote(m.id, to, data);
    this.hint(m, rel);
    this.hint(m, to);
  }

  /**
   * The watcher's hint: late, now and then lost (the next rescan finds the change), or an
   * overflow (the engine rescans everything).
   */
  private hint(m: Machine, rel: string): void {
    const hints = m.hints;
    if (hints !== null) {
      const r = this.w.rng.int(0, 99);
      const fate = r < 85 ? 'hint' : r < 95 ? 'lost' : 'overflow';
      this.w.q.schedule(this.w.rng.int(0, 30), () => hints === m.hints && hints.changed(rel, fate));
    }
  }

  /** Two blocks, the second small: hashing MiBs is most of what large files cost here. */
  private largeContent(tag: string): Buffer {
    const blocks = 2;
    const data = Buffer.alloc(BLOCK_BYTES + this.w.rng.int(1, 64 * 1024));
    for (let i = 0; i < blocks; i++)
      data.write(
        this.w.rng.chance(0.5) ? `shared block ${i}` : `${tag} block ${i}`,
        i * BLOCK_BYTES,
      );
    return data;
  }
}
