import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import path from 'node:path';
import { FsNode } from '../e2e/cluster.js';
import { tempDir } from './tmp.js';

/**
 * A temp dir for a test file (`perTest`: for each test) and the nodes a test starts in it:
 * afterwards each node is killed by its pid and the dir removed. Push every node to `nodes`
 * (`pair` does).
 */
export function tempNodes(
  prefix: string,
  perTest = false,
): {
  readonly dir: string;
  nodes: FsNode[];
  pair: (args?: string[]) => Promise<[FsNode, FsNode]>;
} {
  let dir = '';
  let cleanup: () => Promise<void> = async () => undefined;
  const nodes: FsNode[] = [];
  (perTest ? beforeEach : beforeAll)(async () => ({ dir, cleanup } = await tempDir(prefix)));
  (perTest ? afterEach : afterAll)(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop('SIGKILL')));
    await cleanup();
  });
  return {
    get dir() {
      return dir;
    },
    nodes,
    /** Nodes a and b (b dialling a) in this dir, started, with `args` on both. */
    pair: async (args = []) => {
      const a = new FsNode(path.join(dir, 'a'), args);
      const b = new FsNode(path.join(dir, 'b'), args);
      nodes.push(a, b);
      await a.start();
      await b.start(['--peers', a.advertise]);
      return [a, b];
    },
  };
}
