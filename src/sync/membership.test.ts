import { describe, expect, it } from 'vitest';
import type { NodeId } from '../core/index.js';
import { FakeNode } from '../../test/helpers/fake-node.js';
import { Membership } from './membership.js';
import {
  decodePeerRecord,
  encodeForgotten,
  encodePeerRecord,
  forgottenKey,
  peerKey,
} from './peer-record.js';
import type { PeerLink, Transport } from './types.js';

/** Membership on a FakeNode whose writes are durable at once, with a transport that records. */
function setup(opts: { discover?: boolean; linked?: NodeId[] } = {}) {
  const node = new FakeNode(
    { id: 1, incarnation: 'inc-1', durable: [], awaitSeq: false },
    { scheduleSync: (fn) => queueMicrotask(fn), now: () => 1_000_000, onDurable: () => undefined },
  );
  const dialled: string[] = [];
  const hungUp: NodeId[] = [];
  const learnt: [NodeId, string][] = [];
  const transport: Transport = {
    start: () => undefined,
    dial: (a) => void dialled.push(a),
    hangUp: (p) => void hungUp.push(p),
    device: 'DEV-1',
    learn: (p, d) => void learnt.push([p, d]),
    close: async () => undefined,
  };
  const m = new Membership(
    { node, transport, linked: (p) => (opts.linked ?? []).includes(p) },
    { advertise: '127.0.0.1:7001', seeds: ['127.0.0.1:7000'], discover: opts.discover ?? true },
  );
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 10; i++) await new Promise((res) => setImmediate(res));
  };
  return { node, m, dialled, hungUp, learnt, settle };
}

const link = (peer: NodeId, incarnation: string): PeerLink => ({
  peer,
  incarnation,
  advertise: null,
  send: () => true,
  bufferedBytes: 0,
});

describe('Membership', () => {
  it('advertises this node, dials the seeds and the known members, and learns their devices', async () => {
    const { node, m, dialled, learnt, settle } = setup();
    await node.merge(
      [
        {
          key: peerKey(2),
          value: encodePeerRecord({ addr: '127.0.0.1:7002', incarnation: 'i2', device: 'D2' }),
          meta: { ts: 5, node: 2, seq: 1 },
        },
      ],
      2,
    );
    expect(m.start()).toBe(1);
    await settle();
    expect(dialled).toEqual(['127.0.0.1:7000', '127.0.0.1:7002']);
    expect(learnt).toEqual([[2, 'D2']]);
    expect(node.state.members.has(2)).toBe(true);
    const own = decodePeerRecord(node.state.get(peerKey(1))!.value!);
    expect(own).toEqual({ addr: '127.0.0.1:7001', incarnation: 'inc-1', device: 'DEV-1' });
  });

  it('writes its record again above a forgery, and leaves a true one alone', async () => {
    const { node, m } = setup();
    await m.advertise();
    const ts = node.state.get(peerKey(1))!.meta.ts;
    await m.advertise();
    expect(node.state.get(peerKey(1))!.meta.ts).toBe(ts);
    await m.advertise(ts + 1000);
    expect(node.state.get(peerKey(1))!.meta.ts).toBeGreaterThan(ts + 1000);
  });

  it('refuses and hangs up on a forgotten incarnation, and admits a new one', async () => {
    const { node, m, hungUp } = setup();
    await node.put(forgottenKey(3), encodeForgotten('old'));
    expect(m.admit(link(3, 'old'))).toBe(false);
    expect(m.admit(link(3, 'old'))).toBe(false);
    expect(hungUp).toEqual([3, 3]);
    expect(m.admit(link(3, 'new'))).toBe(true);
  });

  it('dials a newly advertised member, and drops a withdrawn one unless it is linked', async () => {
    const { node, m, dialled, settle } = setup({ linked: [5] });
    const rec = (id: NodeId) => ({
      key: peerKey(id),
      value: encodePeerRecord({ addr: `127.0.0.1:70${id}0`, incarnation: `i${id}` }),
      meta: { ts: 5, node: id, seq: 1 },
    });
    m.onEntry(rec(4));
    m.onEntry(rec(5));
    await settle();
    expect(dialled).toEqual(['127.0.0.1:7040']); // 5 is linked already
    expect(node.state.members.has(4) && node.state.members.has(5)).toBe(true);
    m.onEntry({ ...rec(4), value: null });
    m.onEntry({ ...rec(5), value: null });
    await settle();
    expect(node.state.members.has(4)).toBe(false);
    expect(node.state.members.has(5)).toBe(true);
  });

  it('dials nobody it learns of when discovery is off', async () => {
    const { m, dialled } = setup({ discover: false });
    m.onEntry({
      key: peerKey(4),
      value: encodePeerRecord({ addr: '127.0.0.1:7040', incarnation: 'i4' }),
      meta: { ts: 5, node: 4, seq: 1 },
    });
    expect(dialled).toEqual([]);
  });
});
