import { randomBytes, webcrypto } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { hashFile, hashingBytesInFlight, HASHING_MAX_BYTES, sha256 } from './hasher.js';
import { BLOCK_BYTES } from './record.js';

describe('hashFile', () => {
  it('relies on WebCrypto copying its input when digest is called (hashFile reuses its buffer)', async () => {
    const buf = Buffer.alloc(BLOCK_BYTES, 1);
    const want = sha256(buf);
    const pending = webcrypto.subtle.digest('SHA-256', buf);
    buf.fill(2);
    expect(Buffer.from(await pending).toString('hex')).toBe(want);
  });

  it('gives the same answer whatever size hint it gets (a hint may be stale)', async () => {
    const { dir, cleanup } = await tempDir('hasher-');
    try {
      for (const bytes of [0, 10, 100 * 1024, 2 * BLOCK_BYTES + 7]) {
        const data = randomBytes(bytes);
        const f = path.join(dir, `f${bytes}`);
        await writeFile(f, data);
        const blockHashes =
          bytes > BLOCK_BYTES
            ? [0, 1, 2].map((i) => sha256(data.subarray(i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES)))
            : [];
        for (const hint of [0, bytes, 10, 5 * BLOCK_BYTES]) {
          const h = await hashFile(f, hint);
          expect(h).toMatchObject({ size: bytes, hash: sha256(data), blocks: blockHashes });
          // The scanner's "unchanged while read" check uses this stat of the same descriptor.
          const st = await stat(f);
          expect([h.statAfter.ino, h.statAfter.size, h.statAfter.mtimeMs]).toEqual([
            st.ino,
            bytes,
            st.mtimeMs,
          ]);
        }
      }
    } finally {
      await cleanup();
    }
  });

  it('holds at most HASHING_MAX_BYTES of buffers however many large files are hashed at once', async () => {
    const { dir, cleanup } = await tempDir('hasher-');
    try {
      const data = randomBytes(2 * BLOCK_BYTES);
      const files = Array.from({ length: 12 }, (_, i) => path.join(dir, `big${i}`));
      for (const f of files) await writeFile(f, data);
      let most = 0;
      let done = false;
      const watch = (async () => {
        while (!done) {
          most = Math.max(most, hashingBytesInFlight());
          await new Promise((r) => setImmediate(r));
        }
      })();
      const hashes = await Promise.all(files.map((f) => hashFile(f, data.length)));
      done = true;
      await watch;
      expect(new Set(hashes.map((h) => h.hash))).toEqual(new Set([sha256(data)]));
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(HASHING_MAX_BYTES);
      expect(hashingBytesInFlight()).toBe(0);
    } finally {
      await cleanup();
    }
  });
});
