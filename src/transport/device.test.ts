import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { loadOrCreateDevice, makeDevice, parseDeviceId } from './device.js';

describe('device identity', () => {
  it('is made in a worker: the key matches the certificate, and no X.509 library loads here', async () => {
    const d = await makeDevice();
    expect(new X509Certificate(d.certPem).checkPrivateKey(createPrivateKey(d.keyPem))).toBe(true);
    // reflect-metadata, which @peculiar/x509 needs, patches the global Reflect where it loads.
    expect('getMetadata' in Reflect).toBe(false);
  });

  it('is made once per data dir, private to its owner, and the same at every start', async () => {
    const { dir, cleanup } = await tempDir('filesync-device-');
    try {
      const a = await loadOrCreateDevice(dir);
      expect(a.id).toMatch(/^([A-Z2-7]{8}-){5}[A-Z2-7]{8}$/);
      for (const f of ['device-key.pem', 'device-cert.pem'])
        expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
      expect((await loadOrCreateDevice(dir)).id).toBe(a.id);
      const { dir: other, cleanup: c2 } = await tempDir('filesync-device-');
      expect((await loadOrCreateDevice(other)).id).not.toBe(a.id);
      await c2();
    } finally {
      await cleanup();
    }
  });

  it('after a kill between the key and the certificate, starts over; a corrupt certificate is named', async () => {
    const { dir, cleanup } = await tempDir('filesync-device-');
    try {
      const a = await loadOrCreateDevice(dir);
      await rm(path.join(dir, 'device-cert.pem')); // the state a kill after the key's write leaves
      const b = await loadOrCreateDevice(dir);
      expect(b.id).not.toBe(a.id);
      expect(await readFile(path.join(dir, 'device-key.pem'), 'utf8')).toBe(b.keyPem);
      expect((await loadOrCreateDevice(dir)).id).toBe(b.id);
      await writeFile(path.join(dir, 'device-cert.pem'), 'garbage');
      await expect(loadOrCreateDevice(dir)).rejects.toThrow(
        /device-cert\.pem is not a valid certificate/,
      );
    } finally {
      await cleanup();
    }
  });

  it('reads a device ID in any case, with or without dashes', () => {
    const id = 'ABCDEFGH-IJKLMNOP-QRSTUVWX-YZ234567-ABCDEFGH-IJKLMNOP';
    expect(parseDeviceId(id.toLowerCase())).toBe(id);
    expect(parseDeviceId(id.replace(/-/g, ''))).toBe(id);
    expect(parseDeviceId('ABCD')).toBeNull();
    expect(parseDeviceId(id.replace('A', '1'))).toBeNull();
  });
});
