import { createServer } from 'node:net';

function isFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createServer();
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

/** A base port P such that P + each offset is free on loopback (probed, bounded tries). */
export async function freePortBase(offsets: readonly number[]): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const p = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await Promise.all(offsets.map((o) => isFree(p + o)))).every(Boolean)) return p;
  }
  throw new Error('no free ports on loopback');
}
