// Makes a device's key pair and self-signed certificate, in a worker thread (device.ts says
// why). Plain JavaScript: a worker cannot load TypeScript, and this runs from src/ and dist/
// alike. Node has no X.509 builder: @peculiar/x509 (maintained by PeculiarVentures,
// WebCrypto-based, used by selfsigned and others) signs it.
import { Buffer } from 'node:buffer';
import { webcrypto as crypto } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

async function make() {
  x509.cryptoProvider.set(crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const serial = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
  serial[0] &= 0x7f; // a positive serial number
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: 'CN=filesync',
    notBefore: new Date(Date.UTC(2000, 0, 1)),
    notAfter: new Date(Date.UTC(9999, 11, 31)),
    signingAlgorithm: alg,
    keys,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8
    .toString('base64')
    .replace(/.{64}/g, '$&\n')
    .trimEnd()}\n-----END PRIVATE KEY-----\n`;
  return { keyPem, certPem: cert.toString('pem') + '\n' };
}

make().then(
  (made) => parentPort.postMessage(made),
  (e) => parentPort.postMessage({ error: String((e && e.message) || e) }),
);
