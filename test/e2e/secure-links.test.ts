import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { dialLink, testDevice } from '../helpers/evil-peer.js';
import { waitFor } from '../helpers/tmp.js';
import { tempNodes } from '../helpers/temp-nodes.js';
import { converge, exists, FsNode, runCli } from './cluster.js';

/**
 * Links are TLS 1.3 with a certificate per node; a peer is admitted by a proof of the secret
 * bound to its TLS channel, a pinned device ID, or (no secret, no pins) loopback only. Tried
 * as an outsider would: relaying, from a web page, before authentication, on the wire.
 */
const t = tempNodes('filesync-links-', true);
const nodes = t.nodes;

interface Status {
  node: { id: number; device: string; keys: number };
  counters: Record<string, number>;
  peers: { id: number; connected: boolean; advertise: string | null }[];
  transfers?: unknown;
  redacted?: boolean;
}
const status = async (n: FsNode, secret?: string): Promise<Status> =>
  (await (
    await fetch(`http://${n.advertise}/status`, {
      ...(secret !== undefined && { headers: { authorization: `Bearer ${secret}` } }),
    })
  ).json()) as Status;

async function node(name: string, args: string[], extra: string[] = []): Promise<FsNode> {
  const n = new FsNode(path.join(t.dir, name), args);
  nodes.push(n);
  return n.start(extra);
}

/** A TCP relay that records every byte it forwards. */
async function recordingRelay(
  target: string,
): Promise<{ addr: string; bytes: () => Buffer; close: () => void }> {
  const seen: Buffer[] = [];
  const socks = new Set<Socket>();
  const [host, port] = [target.replace(/:\d+$/, ''), Number(target.replace(/^.*:/, ''))];
  const server = createServer((inbound) => {
    const outbound = connect(port, host);
    for (const s of [inbound, outbound]) {
      socks.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (inbound.destroy(), outbound.destroy()));
    }
    inbound.on('data', (d: Buffer) => (seen.push(d), outbound.write(d)));
    outbound.on('data', (d: Buffer) => (seen.push(d), inbound.write(d)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    addr: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    bytes: () => Buffer.concat(seen),
    close: () => {
      for (const s of socks) s.destroy();
      server.close();
    },
  };
}

/** An HTTP request with headers fetch will not set (Host). */
function rawGet(addr: string, route: string, headers: Record<string, string>): Promise<number> {
  const [host, port] = [addr.replace(/:\d+$/, ''), Number(addr.replace(/^.*:/, ''))];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path: route, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

async function rssKiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

describe('secure links', () => {
  it('a relay in the middle sees no file content, no file name and not the secret', async () => {
    const secret = 'correct horse battery staple';
    const a = await node('a', ['--secret', secret, '--no-discover']);
    const relay = await recordingRelay(a.advertise);
    try {
      const b = await node('b', ['--secret', secret, '--no-discover'], ['--peers', relay.addr]);
      const content = 'PLAINTEXT-CONTENT-'.repeat(500);
      await writeFile(path.join(a.dir, 'secret-plans-name.txt'), content);
      await converge([a, b], 'the file to reach b through the relay', 30_000);
      const wire = relay.bytes();
      expect(wire.length).toBeGreaterThan(content.length);
      for (const needle of ['PLAINTEXT-CONTENT', 'secret-plans-name', secret])
        expect(wire.includes(Buffer.from(needle))).toBe(false);
    } finally {
      relay.close();
    }
  });

  it("an outsider relaying an honest node's proof to another is refused and gets nothing", async () => {
    const secret = 's3cret';
    const a = await node('a', ['--secret', secret, '--no-discover']);
    await writeFile(path.join(a.dir, 'private.txt'), 'only for members');
    // The outsider listens; an honest node c dials it (a wrong address in its --peers) and
    // shows its hello and proof, which the outsider presents to a as its own.
    const device = await testDevice();
    let captured: Record<string, string | string[] | undefined> | null = null;
    const trap = createHttpsServer({
      key: device.keyPem,
      cert: device.certPem,
      requestCert: true,
      rejectUnauthorized: false,
    });
    trap.on('upgrade', (req, socket: Socket) => {
      captured = req.headers;
      socket.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    try {
      const trapAddr = `127.0.0.1:${(trap.address() as AddressInfo).port}`;
      const c = await node('c', ['--secret', secret, '--no-discover'], ['--peers', trapAddr]);
      await waitFor(() => captured !== null, 'c to dial the outsider');
      const h = captured!;
      const proof = Buffer.from(String(h['x-filesync-proof']), 'hex');
      expect(proof.length).toBe(32);
      const r = await dialLink(a.advertise, {
        id: Number(h['x-filesync-node']),
        incarnation: String(h['x-filesync-incarnation']),
        device,
        proof: () => proof,
      });
      expect('ws' in r).toBe(false);
      expect(r).toMatchObject({ status: 403, reason: 'wrong cluster secret' });
      expect(await exists(path.join(c.dir, 'private.txt'))).toBe(false);
    } finally {
      trap.close();
    }
  });

  it('a web page cannot reach a default node: a foreign Origin and a foreign Host are refused', async () => {
    const a = await node('a', []);
    await writeFile(path.join(a.dir, 'x.txt'), 'x');
    const r = await dialLink(a.advertise, {
      id: 4242,
      incarnation: 'page',
      device: await testDevice(),
      headers: { origin: 'https://evil.example' },
    });
    expect(r).toMatchObject({ status: 403, reason: 'browser origins are refused' });
    // A browser page on a rebound name, or any page's request: refused before any route.
    expect(await rawGet(a.advertise, '/status', { host: 'attacker.example:7400' })).toBe(403);
    expect(await rawGet(a.advertise, '/status', { origin: 'https://evil.example' })).toBe(403);
    // Without the control token or the secret, /status names no paths and no peer addresses.
    const s = await status(a);
    expect(s.redacted).toBe(true);
    expect(typeof s.transfers).toBe('number');
    // A plain (unencrypted) WebSocket is refused: links are TLS.
    const plain = new WebSocket(`ws://${a.advertise}/sync`);
    const code = await new Promise<number>((res) =>
      plain.on('unexpected-response', (_q, resp) => res(resp.statusCode ?? 0)),
    );
    expect(code).toBe(426);
  });

  it('before authentication: the 5-byte array bomb and 80 half-sent connections leave the node small and answering', async () => {
    const a = await node('a', ['--secret', 'k']);
    const before = await rssKiB(a.pid);
    const [host, port] = [
      a.advertise.replace(/:\d+$/, ''),
      Number(a.advertise.replace(/^.*:/, '')),
    ];
    const socks: Socket[] = [];
    const bomb = Buffer.from([0xdd, 0x02, 0x00, 0x00, 0x00]);
    const partial = [
      // A TLS record that announces 16000 bytes and brings 1000.
      Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x3e, 0x80]), Buffer.alloc(1000, 1)]),
      // An HTTP head that never ends.
      Buffer.from(`GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'p'.repeat(7000)}`),
      // The array bomb, where a frame would have been before TLS.
      bomb,
    ];
    // From another loopback address: the limits are per address, so this one's callers
    // still get in while the attacker holds every slot it may.
    for (let i = 0; i < 80; i++) {
      const s = connect({ port, host, localAddress: '127.0.0.2' });
      s.on('error', () => undefined);
      s.resume();
      socks.push(s);
      s.write(partial[i % 3]!);
    }
    // Refused and authenticated callers alike get nothing decoded past the headers.
    for (let i = 0; i < 24; i++) {
      const r = await dialLink(a.advertise, {
        id: 5000 + i,
        incarnation: 'x',
        device: await testDevice(),
        secret: 'wrong',
      });
      expect(r).toMatchObject({ status: 403 });
    }
    const s = await status(a, 'k');
    expect(s.node.id).toBeGreaterThan(0);
    // 80 at once from one address: past 16 waiting, the rest were refused outright.
    expect(s.counters.pendingRefused).toBeGreaterThan(0);
    expect((await rssKiB(a.pid)) - before).toBeLessThan(64 * 1024);
    // The handshake deadline closes every one of them.
    await waitFor(
      () => socks.every((x) => x.destroyed || x.readyState === 'closed'),
      'the half-sent connections to be closed',
      30_000,
    );
    for (const x of socks) x.destroy();
  });

  it('pinned device IDs without a secret: pinned nodes sync, an unknown certificate is refused', async () => {
    const a0 = await node('a', []);
    const b0 = await node('b', []);
    const [aDev, bDev] = [(await status(a0)).node.device, (await status(b0)).node.device];
    const id = await runCli(['id', '--dir', a0.dir]);
    expect(id.stdout.trim()).toBe(aDev);
    await Promise.all([a0.stop(), b0.stop()]);
    nodes.splice(0);
    const a = await node('a', ['--trust', bDev]);
    const b = await node('b', [], ['--peers', `${aDev}@${a.advertise}`]);
    await writeFile(path.join(a.dir, 'pinned.txt'), 'hello');
    await converge([a, b], 'the pinned pair to sync', 30_000);
    // c is on loopback too, but pins turn demo mode off: its certificate is unknown to a.
    const c = await node('c', [], ['--peers', a.advertise]);
    await waitFor(() => a.stderr.includes('unknown device'), 'a to refuse c');
    expect(await exists(path.join(c.dir, 'pinned.txt'))).toBe(false);
    // b dialled a by ID: an impostor at that address is refused by b as well.
    expect(b.stderr).not.toContain('refusing peer');
  });
});
