import { randomBytes } from 'node:crypto';
import type { ClientRequest } from 'node:http';
import type { TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { Codec } from '../../src/codec/index.js';
import type { Entry } from '../../src/core/index.js';
import { toWire } from '../../src/sync/index.js';
import { makeDevice, deviceIdOf, type Device } from '../../src/transport/device.js';
import {
  channelKey,
  helloHeaders,
  linkProof,
  PROTOCOL_VERSION,
  REASON_HEADER,
} from '../../src/transport/handshake.js';
import { waitFor } from './tmp.js';

const packr = new Codec({ useRecords: false, mapsAsObjects: true });

/** A decoded frame from the node under attack. */
export type Frame = Record<string, unknown> & { t: string };

let shared: Promise<Device> | null = null;
/** A device for test peers (one per test process: making one costs a key pair). */
export function testDevice(): Promise<Device> {
  return (shared ??= makeDevice());
}

export interface DialOptions {
  id: number;
  incarnation: string;
  device: Device;
  secret?: string;
  advertise?: string | null;
  /** Send this proof instead of computing one (a relayed proof). */
  proof?: (ekm: Buffer, theirDevice: string) => Buffer | null;
  /** Claim this protocol version instead of ours. */
  protocol?: number;
  /** Extra request headers (an Origin, say). */
  headers?: Record<string, string>;
}

/**
 * Open a link as a real node would (TLS with our certificate, hello and proof in the upgrade).
 * Resolves with the socket once open, or with the refusal's status and reason.
 */
export async function dialLink(
  addr: string,
  o: DialOptions,
): Promise<{ ws: WebSocket; victim: number; device: string } | { status: number; reason: string }> {
  let theirDevice = '';
  const ws = new WebSocket(`wss://${addr}/sync`, {
    key: o.device.keyPem,
    cert: o.device.certPem,
    rejectUnauthorized: false,
    headers: o.headers ?? {},
    finishRequest: (req: ClientRequest) =>
      req.once('socket', (s) =>
        s.once('secureConnect', () => {
          const tls = s as TLSSocket;
          theirDevice = deviceIdOf(tls.getPeerCertificate().raw);
          const ekm = channelKey(tls);
          const proof =
            o.proof?.(ekm, theirDevice) ??
            (o.secret === undefined
              ? null
              : linkProof(
                  o.secret,
                  ekm,
                  'dialler',
                  { node: o.id, device: o.device.id },
                  theirDevice,
                ));
          const hello = helloHeaders({
            node: o.id,
            incarnation: o.incarnation,
            advertise: o.advertise ?? null,
            protocol: o.protocol ?? PROTOCOL_VERSION,
            secret: o.secret !== undefined || o.proof !== undefined,
            proof,
          });
          for (const [k, v] of Object.entries(hello)) req.setHeader(k, v);
          req.end();
        }),
      ),
  });
  ws.binaryType = 'nodebuffer';
  return new Promise((resolve, reject) => {
    let victim = 0;
    ws.on('upgrade', (res) => (victim = Number(res.headers['x-filesync-node'])));
    ws.once('open', () => resolve({ ws, victim, device: theirDevice }));
    ws.on('unexpected-response', (req, res) => {
      const reason = res.headers[REASON_HEADER];
      resolve({ status: res.statusCode ?? 0, reason: typeof reason === 'string' ? reason : '' });
      req.destroy();
    });
    ws.once('error', (e) => reject(e));
  });
}

/**
 * A hostile peer that speaks the real wire protocol: TLS, the hello (and the secret's proof,
 * if it knows it), then whatever the test makes it send. It answers nothing unless told to.
 */
export class EvilPeer {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  /** The node's id, from its hello. */
  victim = 0;
  /** Bytes of every frame the node sent us. */
  bytesIn = 0;
  readonly incarnation = randomBytes(8).toString('hex');
  /** Called for every frame the node sends after the handshake. */
  onFrame: (f: Frame) => void = () => undefined;
  private ws!: WebSocket;
  private rid = 1_000_000;

  private constructor(readonly id: number) {}

  static async connect(
    addr: string,
    opts: { id?: number; secret?: string; advertise?: string | null } = {},
  ): Promise<EvilPeer> {
    const p = new EvilPeer(opts.id ?? 0x7e57_0000 + Math.floor(Math.random() * 0xffff));
    const r = await dialLink(addr, {
      id: p.id,
      incarnation: p.incarnation,
      device: await testDevice(),
      ...(opts.secret !== undefined && { secret: opts.secret }),
      advertise: opts.advertise ?? null,
    });
    if (!('ws' in r)) {
      p.closed = { code: r.status, reason: r.reason };
      return p;
    }
    p.ws = r.ws;
    p.victim = r.victim;
    r.ws.on('message', (data: Buffer) => p.receive(data));
    r.ws.on('close', (code, reason) => (p.closed = { code, reason: reason.toString() }));
    r.ws.on('error', () => undefined);
    await waitFor(() => p.victim !== 0 || p.closed !== null, 'the node’s hello', 10_000);
    return p;
  }

  private receive(data: Buffer): void {
    this.bytesIn += data.length;
    let f: Frame;
    try {
      f = packr.unpack(data) as Frame;
    } catch {
      return; // a raw block frame
    }
    this.frames.push(f);
    this.onFrame(f);
  }

  sendFrame(f: Record<string, unknown>): void {
    this.ws.send(packr.pack(f), { binary: true });
  }

  nextRid(): number {
    return this.rid++;
  }

  /** Push entries as a relay would. */
  push(entries: Entry[]): void {
    this.sendFrame({ t: 'push', id: this.nextRid(), entries: entries.map(toWire) });
  }

  /** Answer every sync round the node starts with this response (acks, entries). */
  answerRounds(make: () => { acks: number[]; entries?: Entry[] }): void {
    const prev = this.onFrame;
    const answer = (f: Frame): void => {
      if (f.t !== 'sync') return;
      const { acks, entries = [] } = make();
      this.sendFrame({
        t: 'sync-res',
        rid: f.rid,
        acks,
        digest: '0',
        entries: entries.map(toWire),
        last: true,
        merged: true,
        yours: 0,
      });
    };
    this.onFrame = (f) => {
      prev(f);
      answer(f);
    };
    for (const f of this.frames) answer(f); // a round that came with the handshake
  }

  /**
   * The amplification attack: ask for everything, again and again (a reset round, then every
   * bucket's entries), one more request per answer, `inFlight` at a time, until `stop()`.
   * Returns the bytes the requests cost us and the stop.
   */
  floodRequests(inFlight = 8): { sentBytes: () => number; stop: () => void } {
    let sent = 0;
    let stopped = false;
    let n = 0;
    const ask = (): void => {
      const f =
        n++ % 2 === 0
          ? {
              t: 'sync',
              rid: this.nextRid(),
              from: this.id,
              incarnation: this.incarnation,
              acks: [],
              entries: [],
              complete: true,
              reset: true,
            }
          : {
              t: 'bucket-entries',
              rid: this.nextRid(),
              buckets: [...Array(256).keys()],
              entries: [],
            };
      const bytes = packr.pack(f);
      sent += bytes.length;
      this.ws.send(bytes, { binary: true });
    };
    const prev = this.onFrame;
    this.onFrame = (f) => {
      prev(f);
      if (!stopped && (f.t === 'sync-res' || f.t === 'bucket-entries-res' || f.t === 'error'))
        ask();
    };
    for (let i = 0; i < inFlight; i++) ask();
    return { sentBytes: () => sent, stop: () => void (stopped = true) };
  }

  /** Wait for a frame from the node matching `pred`. */
  async expectFrame(pred: (f: Frame) => boolean, what: string, timeoutMs = 15_000): Promise<Frame> {
    let hit: Frame | undefined;
    await waitFor(() => (hit = this.frames.find(pred)) !== undefined, what, timeoutMs);
    return hit!;
  }

  close(): void {
    this.ws.terminate();
  }
}
