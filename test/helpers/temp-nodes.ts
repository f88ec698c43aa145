import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { FsNode } from '../e2e/cluster.js';
import { tempDir } from './tmp.js';

/**
 * A temp dir for a test file (`perTest`: for each test) and the nodes a test starts in it:
 * afterwards each node is killed by its pid and the dir removed. Push every node to `nodes`.
 */
export function tempNodes(
  prefix: string,
  perTest = false,
): { readonly dir: string; nodes: FsNode[] } {
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
  };
}
