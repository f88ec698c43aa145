/**
 * Owns: this node's device identity (an ECDSA P-256 key pair and a self-signed certificate in
 * the data dir) and device IDs (what peers pin).
 * Must not touch: anything but the two PEM files in the data dir.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { isErrno, writeFileAtomic } from '../store/index.js';

/** A device ID: base32 of the first 30 bytes of the certificate's SHA-256, in 6 groups of 8. */
export type DeviceId = string;

export interface Device {
  id: DeviceId;
  keyPem: string;
  certPem: string;
}

export class DeviceError extends Error {}

const KEY_FILE = 'device-key.pem';
const CERT_FILE = 'device-cert.pem';
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const ID_BYTES = 30;

/** The device ID of a DER certificate (what `getPeerCertificate().raw` gives). */
export function deviceIdOf(certDer: Uint8Array): DeviceId {
  const h = createHash('sha256').update(certDer).digest().subarray(0, ID_BYTES);
  let bits = 0;
  let acc = 0;
  let out = '';
  for (const b of h) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  return out.match(/.{8}/g)!.join('-');
}

/** A device ID as a user typed it (any case, dashes optional), or null if it is not one. */
export function parseDeviceId(s: string): DeviceId | null {
  const bare = s.toUpperCase().replace(/-/g, '');
  if (!/^[A-Z2-7]{48}$/.test(bare)) return null;
  return bare.match(/.{8}/g)!.join('-');
}

/** The data dir's device, made (key first, mode 0600) at its first start. */
export async function loadOrCreateDevice(dataDir: string): Promise<Device> {
  const keyFile = path.join(dataDir, KEY_FILE);
  const certFile = path.join(dataDir, CERT_FILE);
  const [keyPem, certPem] = await Promise.all([readOrNull(keyFile), readOrNull(certFile)]);
  if (keyPem !== null && certPem !== null) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch {
      throw new DeviceError(
        `${certFile} is not a valid certificate: move it away to make a new one`,
      );
    }
    return { id: deviceIdOf(cert.raw), keyPem, certPem };
  }
  // A crash between the two writes leaves a key without a certificate: start over.
  const made = await makeDevice();
  await writeFileAtomic(keyFile, Buffer.from(made.keyPem), 0o600);
  await writeFileAtomic(certFile, Buffer.from(made.certPem), 0o600);
  return made;
}

async function readOrNull(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
}

/** The worker that signs certificates: the same path from src/ and from dist/. */
const MAKER = fileURLToPath(new URL('../../src/transport/make-device.mjs', import.meta.url));

/**
 * A fresh key pair and self-signed certificate, made in a worker thread: the X.509 library
 * and its ASN.1 stack stay in the worker's heap, which goes when it ends, instead of costing
 * the node ~8 MiB of RSS for as long as it runs (docs/decisions.md).
 */
export async function makeDevice(): Promise<Device> {
  const made = await new Promise<unknown>((resolve, reject) => {
    const w = new Worker(MAKER);
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new DeviceError(`the certificate maker exited (${code})`)));
  });
  const m = made as { keyPem?: unknown; certPem?: unknown; error?: unknown };
  if (typeof m.keyPem !== 'string' || typeof m.certPem !== 'string')
    throw new DeviceError(`cannot make a device certificate: ${String(m.error)}`);
  const cert = new X509Certificate(m.certPem);
  return { id: deviceIdOf(cert.raw), keyPem: m.keyPem, certPem: m.certPem };
}
