import path from 'node:path';
import { realClock } from '../../src/filesync/clock.js';
import { expect } from 'vitest';
import { WaveNode } from '../../src/node/index.js';
import type { Ctx } from '../../src/filesync/context.js';
import { DiskIndex } from '../../src/filesync/disk-index.js';
import { sha256 } from '../../src/filesync/hasher.js';
import { HeldDeletions } from '../../src/filesync/held-deletions.js';
import { IgnoreRules } from '../../src/filesync/ignore.js';
import { UnreadablePaths } from '../../src/filesync/localfs.js';
import { MemDisk } from '../../src/filesync/mem-disk.js';
import { keyOf } from '../../src/filesync/paths.js';
import { encodeRecord, type FileRecord, type Version } from '../../src/filesync/record.js';
import { RealParents } from '../../src/filesync/safe-fs.js';
import type { Content } from '../../src/filesync/content.js';
import { Trash } from '../../src/filesync/trash.js';
import { tempDir } from './tmp.js';

/** The synced root and the trash on the in-memory disk. */
export const ROOT = '/r';
export const TRASH = '/data/trash';
/** Where the fake transfer lands downloads (outside the root, like the real .filesync/tmp). */
export const TMP = '/data/tmp';

/**
 * A mirror's shared context on the in-memory disk, for unit tests of its rules: a real
 * WaveNode (on a temp dir), the real parent checks and trash on a `MemDisk`, and a transfer
 * that lands a file's content in a temp file the way the real one does (its text names the
 * key and version, so a test sees which version landed where).
 */
export async function memMirror() {
  const { dir, cleanup } = await tempDir('mem-mirror-');
  const node = await WaveNode.open({ dataDir: path.join(dir, 'data') });
  const disk = new MemDisk(ROOT);
  disk.mkdir(TMP, { recursive: true });
  const events: string[] = [];
  const fetched: string[] = [];
  const ctx: Ctx = {
    root: ROOT,
    disk,
    clock: realClock,
    node,
    index: new DiskIndex(path.join(dir, 'index')),
    landing: new Map(),
    ignore: new IgnoreRules(ROOT, []),
    parents: new RealParents(ROOT, disk),
    unreadable: new UnreadablePaths(() => undefined),
    trash: new Trash(TRASH, 3600_000, disk),
    transfer: {
      fetch: (key: string, r: FileRecord, v: Version) => {
        fetched.push(key);
        const tmp = `${TMP}/${v[0]}-${v[1]}`;
        disk.writeFile(tmp, contentOf(key, v), r.mode);
        return Promise.resolve(tmp);
      },
      noteTrashed: () => undefined,
      keepPublished: () => undefined,
    } as unknown as Content,
    maxConflicts: 10,
    allowMassDelete: false,
    deletions: new HeldDeletions(path.join(dir, 'deletions-held'), false),
    indexMayLag: false,
    lagging: null,
    event: (kind, p, detail) => events.push(`${kind} ${p} ${detail ?? ''}`.trim()),
    withPath: (_rel, fn) => fn(),
  };
  /** A peer's write of `rel`, merged into the KV as it would arrive. */
  const arrives = async (rel: string, r: FileRecord, v: Version): Promise<void> => {
    const e = {
      key: keyOf(rel),
      value: encodeRecord(r),
      meta: { node: v[0], seq: v[1], ts: Date.now() },
    };
    const res = await node.merge([e], v[0]);
    expect(res.rejected).toEqual([]);
  };
  /** Files under the trash, with their content. */
  const trashed = (): string[] =>
    disk
      .paths(TRASH)
      .filter((p) => disk.lstat(p).isFile())
      .map((p) => disk.readFile(p).toString());
  /** Index `rel` (on the disk already) as holding `content` at `version`, as a scan would. */
  const indexed = (rel: string, content: string, version: Version, mtimeMs?: number): void => {
    const st = disk.lstat(at(rel));
    ctx.index.set(rel, {
      type: 'file',
      size: Buffer.byteLength(content),
      mtimeMs: mtimeMs ?? st.mtimeMs,
      ino: st.ino,
      mode: 0o640,
      hash: sha256(Buffer.from(content)),
      blocks: [],
      target: null,
      version,
      ancestors: [],
    });
  };
  const close = async (): Promise<void> => {
    await node.close();
    await cleanup();
  };
  return { ctx, disk, node, events, fetched, arrives, trashed, indexed, close, dir };
}

/** What the fake transfer writes for `key` at `v`. */
export function contentOf(key: string, v: Version): string {
  return `content of ${key} at ${v[0]}/${v[1]}`;
}

/** A file record with `content` (hash and size), written after `prev` if given. */
export function fileRecord(content: string, prev: Version | null = null, mode = 0o640): FileRecord {
  return {
    type: 'file',
    size: content.length,
    mtimeMs: 5000,
    mode,
    hash: sha256(Buffer.from(content)),
    blocks: [],
    target: null,
    prev,
    history: [],
  };
}

/** `rel` under the in-memory root. */
export const at = (rel: string): string => `${ROOT}/${rel}`;
