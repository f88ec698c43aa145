import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/tmp.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, exists, FsNode } from './cluster.js';

/**
 * A path that changes type (file, directory, symlink) converges on every node, alone or
 * racing an edit on another node; the loser's content survives as a conflict copy or in trash.
 */
const t = tempNodes('filesync-type-', true);

const pair = (): Promise<[FsNode, FsNode]> => t.pair(['--rescan-interval', '10m']);

/** Every file's content under `dir` (trash and conflict copies included), for "survives". */
async function everything(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(await readFile(p, 'utf8'));
    }
  };
  await walk(dir);
  return out;
}

describe('type changes', () => {
  it('a directory replaced by a file, and a file replaced by a directory, reach the peer', async () => {
    const [a, b] = await pair();
    await mkdir(path.join(a.dir, 'd/sub'), { recursive: true });
    await writeFile(path.join(a.dir, 'd/sub/x.txt'), 'x');
    await writeFile(path.join(a.dir, 'f'), 'a file');
    await converge([a, b], 'the first tree');
    await rm(path.join(a.dir, 'd'), { recursive: true });
    await writeFile(path.join(a.dir, 'd'), 'now a file');
    await rm(path.join(a.dir, 'f'));
    await mkdir(path.join(a.dir, 'f'));
    await writeFile(path.join(a.dir, 'f/inside.txt'), 'inside');
    await converge([a, b], 'the swapped types on b', 15_000);
    expect(await readFile(path.join(b.dir, 'd'), 'utf8')).toBe('now a file');
    // And back, from b this time.
    await rm(path.join(b.dir, 'd'));
    await mkdir(path.join(b.dir, 'd'));
    await converge([a, b], 'd a directory again on a', 30_000);
  });

  it('a directory replaced by a file while the other node edits inside it converges, keeping both', async () => {
    const [a, b] = await pair();
    await mkdir(path.join(a.dir, 'd'));
    await writeFile(path.join(a.dir, 'd/x.txt'), 'v1');
    await converge([a, b], 'the first tree');
    // A partition: b stops while a replaces the directory and b's user edits inside it.
    b.signal('SIGSTOP');
    await rm(path.join(a.dir, 'd'), { recursive: true });
    await writeFile(path.join(a.dir, 'd'), 'the file that replaced d');
    await waitFor(async () => !(await exists(path.join(a.dir, 'd/x.txt'))), 'a to settle');
    await writeFile(path.join(b.dir, 'd/x.txt'), 'the edit inside d');
    b.signal('SIGCONT');
    await converge([a, b], 'both trees the same', 30_000);
    for (const n of [a, b]) {
      const all = await everything(n.dir);
      expect(all, n.dir).toContain('the edit inside d');
      expect(all, n.dir).toContain('the file that replaced d');
    }
  });

  it('a file replaced by a symlink while the other node edits it keeps both', async () => {
    const [a, b] = await pair();
    await writeFile(path.join(a.dir, 'f.txt'), 'v1');
    await converge([a, b], 'the first tree');
    b.signal('SIGSTOP');
    await rm(path.join(a.dir, 'f.txt'));
    await symlink('elsewhere', path.join(a.dir, 'f.txt'));
    await writeFile(path.join(b.dir, 'f.txt'), 'the edit of f');
    b.signal('SIGCONT');
    await converge([a, b], 'both trees the same', 30_000);
    for (const n of [a, b]) expect(await everything(n.dir), n.dir).toContain('the edit of f');
  });

  it('a file replaced by a directory while the other node edits the file converges, keeping the edit', async () => {
    const [a, b] = await pair();
    await writeFile(path.join(a.dir, 'f'), 'v1');
    await converge([a, b], 'the first tree');
    b.signal('SIGSTOP');
    await rm(path.join(a.dir, 'f'));
    await mkdir(path.join(a.dir, 'f'));
    await writeFile(path.join(a.dir, 'f/inside.txt'), 'inside the new directory');
    await writeFile(path.join(b.dir, 'f'), 'the edit of the file');
    b.signal('SIGCONT');
    await converge([a, b], 'both trees the same', 30_000);
    for (const n of [a, b])
      expect(await readFile(path.join(n.dir, 'f/inside.txt'), 'utf8')).toBe(
        'inside the new directory',
      );
    // The edit survives on b at least: as a conflict copy, or in its trash.
    expect(await everything(b.dir)).toContain('the edit of the file');
  });
});
