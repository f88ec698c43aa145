import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Replica, type ReplicaOptions } from '../../src/replica/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

/**
 * Collection that sticks (GC ages shortened): a collected tombstone does not come back through
 * digest repair when GC timers run out of step, and a member forgotten while away does not
 * bring back, with its old data, what was collected meanwhile.
 */
let dir: string;
let cleanup: () => Promise<void>;
const running = new Set<Replica>();
beforeEach(async () => ({ dir, cleanup } = await tempDir('wavekv-gc-')));
afterEach(async () => {
  await Promise.all([...running].map((r) => r.close()));
  running.clear();
  await cleanup();
});

const gc = (gcIntervalMs: number): Partial<ReplicaOptions> => ({
  sync: { roundIntervalMs: 100, requestTimeoutMs: 2000, gcIntervalMs, tombstoneMinAgeMs: 300 },
  transport: { reconnectBaseMs: 50, reconnectMaxMs: 300 },
});

async function start(name: string, opts: Partial<ReplicaOptions>): Promise<Replica> {
  const r = await Replica.start({ dataDir: path.join(dir, name), port: 0, ...opts });
  running.add(r);
  return r;
}

describe('tombstone GC', () => {
  it('never takes back a collected delete: not through repair, not from a forgotten member', async () => {
    const a = await start('a', gc(100));
    // b's GC runs far less often: a collects first, while b still holds the tombstone.
    const b = await start('b', { ...gc(4000), peers: [a.transport.advertise] });
    const c = await start('c', { ...gc(100), peers: [a.transport.advertise] });
    await a.node.put('doc', Buffer.from('v'));
    await waitFor(() => b.node.get('doc') !== undefined && c.node.get('doc') !== undefined, 'doc');
    // c goes away holding doc; it is forgotten, and the delete is collected without it.
    const cId = c.node.id;
    running.delete(c);
    await c.close();
    await a.driver.forgetPeer(cId);
    await a.node.delete('doc');
    const gone = (r: Replica): boolean => r.node.getEntry('doc') === undefined;
    await waitFor(() => gone(a), 'a to collect the tombstone', 20_000);
    // Rounds with b, which still holds it, until b collects it too: it never comes back to a.
    await waitFor(
      () => {
        expect(gone(a)).toBe(true);
        return gone(b);
      },
      'b to collect it too',
      30_000,
    );
    // c comes back with its old data: refused, and doc stays collected.
    const back = await start('c', {
      ...gc(100),
      peers: [a.transport.advertise, b.transport.advertise],
    });
    const more = a.driver.counters.roundsOk + 20;
    await waitFor(
      () => {
        expect(gone(a) && gone(b)).toBe(true);
        expect(a.driver.linkedPeers).not.toContain(cId);
        return a.driver.counters.roundsOk >= more;
      },
      'twenty more rounds with c back',
      30_000,
    );
    expect(back.node.get('doc')).toBeDefined(); // c keeps its copy: it is outside the cluster now
  }, 90_000);
});
