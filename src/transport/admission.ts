/**
 * Owns: who may become a peer: the cluster secret's proof, pinned device IDs, the device each
 * node id is known by, and loopback demo mode.
 * Must not touch: sockets (the transport hands it what the handshake showed).
 */
import type { NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import type { DeviceId } from './device.js';
import { linkProof, macMatches, type Hello } from './handshake.js';

const log = logger('transport');

export interface AdmissionOptions {
  node: NodeId;
  device: DeviceId;
  secret: string | null;
  /** Device IDs trusted without the secret (--trust, --peers ID@host:port). */
  pinned: Iterable<DeviceId>;
  /** Admit any device on any address (--insecure): links stay encrypted, not authenticated. */
  insecure: boolean;
  /** Whether this node listens on a loopback address only. */
  localLoopback: boolean;
}

export interface Candidate {
  hello: Hello;
  device: DeviceId;
  /** The TLS channel's keying material. */
  ekm: Buffer;
  /** The candidate's side of the connection. */
  role: 'dialler' | 'listener';
  remoteLoopback: boolean;
  /** The device a pinned dial (`ID@host:port`) expects at the other end. */
  expected: DeviceId | null;
}

export type Decision = { ok: true; how: string } | { ok: false; reason: string };

export class Admission {
  private readonly pinned: Set<DeviceId>;
  /** The device each node id was last admitted or advertised with. */
  private readonly known = new Map<NodeId, DeviceId>();

  constructor(private readonly o: AdmissionOptions) {
    this.pinned = new Set(o.pinned);
  }

  /** Demo mode: no secret, no pins, and (checked per link) every address loopback. */
  get open(): boolean {
    return this.o.secret === null && this.pinned.size === 0 && !this.o.insecure;
  }

  pin(device: DeviceId): void {
    this.pinned.add(device);
  }

  /** A `__peer/<id>` record (written by `<id>` itself) names the device it runs on. */
  learn(node: NodeId, device: DeviceId): void {
    this.known.set(node, device);
  }

  /** Our proof for a candidate we are talking to. */
  proofFor(ekm: Buffer, ourRole: 'dialler' | 'listener', theirDevice: DeviceId): Buffer | null {
    if (this.o.secret === null) return null;
    return linkProof(this.o.secret, ekm, ourRole, this.o, theirDevice);
  }

  decide(c: Candidate): Decision {
    const id = c.hello.node;
    if (c.expected !== null && c.device !== c.expected)
      return { ok: false, reason: `device ${c.device} is not the pinned ${c.expected}` };
    const known = this.known.get(id);
    if (this.o.secret !== null) {
      const want = linkProof(
        this.o.secret,
        c.ekm,
        c.role,
        { node: id, device: c.device },
        this.o.device,
      );
      if (!macMatches(want, c.hello.proof)) return { ok: false, reason: 'wrong cluster secret' };
      if (known !== undefined && known !== c.device)
        log.warn('node came back with a new device (rebuilt?); admitted by the cluster secret', {
          peer: id,
          was: known,
          now: c.device,
        });
      return this.admit(id, c.device, 'secret');
    }
    if (known !== undefined && known !== c.device && !this.open && !this.o.insecure)
      return {
        ok: false,
        reason: `node ${id} is known as device ${known}, this connection presents ${c.device}`,
      };
    if (this.pinned.has(c.device) || c.expected === c.device || known === c.device)
      return this.admit(id, c.device, 'pinned');
    if (this.o.insecure) return this.admit(id, c.device, 'insecure');
    if (this.open && this.o.localLoopback && c.remoteLoopback)
      return this.admit(id, c.device, 'loopback');
    return {
      ok: false,
      reason: this.open
        ? 'no cluster secret and not on loopback: set --secret, or pin device IDs with --trust'
        : `unknown device ${c.device}: trust it with --trust ${c.device}`,
    };
  }

  private admit(id: NodeId, device: DeviceId, how: string): Decision {
    this.known.set(id, device);
    return { ok: true, how };
  }
}
