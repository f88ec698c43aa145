/**
 * Requests this node sends a peer and the answers it waits for: each has a request id, a
 * deadline, and ends when its answer comes, its link goes down or sync stops.
 *
 * Owns: the pending requests and their timers. Must not touch: what the answers mean (rounds,
 * repair and the block plane read them), links (it sends through its host).
 */
import type { NodeId } from '../core/index.js';
import { logger } from '../log/index.js';
import type { ResponseMessage, SyncMessage } from './messages.js';
import type { Scheduler, TimerHandle } from './types.js';

const log = logger('sync');

export class RequestError extends Error {}

interface Pending {
  peer: NodeId;
  resolve: (m: ResponseMessage) => void;
  reject: (e: Error) => void;
  timer: TimerHandle;
}

export interface RequestsHost {
  readonly sched: Scheduler;
  /** Send to `peer`; false when there is no link to it or the send failed. */
  send(peer: NodeId, m: SyncMessage): boolean;
  linked(peer: NodeId): boolean;
}

export class Requests {
  private readonly pending = new Map<number, Pending>();
  private nextRid = 1;

  constructor(
    private readonly host: RequestsHost,
    private readonly timeoutMs: number,
  ) {}

  /** Send the request `build` makes for a fresh id; resolves with the peer's answer. */
  request(peer: NodeId, build: (rid: number) => SyncMessage): Promise<ResponseMessage> {
    if (!this.host.linked(peer)) return Promise.reject(new RequestError('not connected'));
    const rid = this.nextRid++;
    const { sched } = this.host;
    return new Promise<ResponseMessage>((resolve, reject) => {
      const timer = sched.setTimeout(
        () => this.fail(rid, `no answer in ${this.timeoutMs} ms`),
        this.timeoutMs,
      );
      this.pending.set(rid, { peer, resolve, reject, timer });
      if (!this.host.send(peer, build(rid))) this.fail(rid, 'send failed');
    });
  }

  /** An answer: it ends the request it names, if `peer` is the one that was asked. */
  onResponse(peer: NodeId, msg: ResponseMessage): void {
    const p = this.pending.get(msg.rid);
    if (p === undefined || p.peer !== peer) {
      log.debug('response to no pending request', { peer, rid: msg.rid, t: msg.t });
      return;
    }
    this.pending.delete(msg.rid);
    this.host.sched.clearTimeout(p.timer);
    p.resolve(msg);
  }

  /** Fail every request waiting on `peer` (all of them when none is named). */
  failAll(why: string, peer?: NodeId): void {
    for (const [rid, p] of this.pending)
      if (peer === undefined || p.peer === peer) this.fail(rid, why);
  }

  private fail(rid: number, why: string): void {
    const p = this.pending.get(rid);
    if (p === undefined) return;
    this.pending.delete(rid);
    this.host.sched.clearTimeout(p.timer);
    p.reject(new RequestError(why));
  }
}

/** The answer `m` as the type `t` expected; a peer's error or another type throws. */
export function expectAnswer<T extends ResponseMessage['t']>(
  m: ResponseMessage,
  t: T,
): Extract<ResponseMessage, { t: T }> {
  if (m.t === 'error') throw new RequestError(`peer error: ${m.message}`);
  if (m.t !== t) throw new RequestError(`expected ${t}, got ${m.t}`);
  return m as Extract<ResponseMessage, { t: T }>;
}
