import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Admission, type AdmissionOptions, type Candidate } from './admission.js';
import { linkProof, type Hello } from './handshake.js';

const A = 'AAAAAAAA-AAAAAAAA-AAAAAAAA-AAAAAAAA-AAAAAAAA-AAAAAAAA';
const B = 'BBBBBBBB-BBBBBBBB-BBBBBBBB-BBBBBBBB-BBBBBBBB-BBBBBBBB';
const X = 'XXXXXXXX-XXXXXXXX-XXXXXXXX-XXXXXXXX-XXXXXXXX-XXXXXXXX';

const us = (o: Partial<AdmissionOptions> = {}): Admission =>
  new Admission({
    node: 1,
    device: A,
    secret: null,
    pinned: [],
    insecure: false,
    localLoopback: true,
    ...o,
  });

function candidate(
  o: Partial<Candidate> & { proof?: Buffer | null; node?: number } = {},
): Candidate {
  const hello: Hello = {
    node: o.node ?? 2,
    incarnation: 'i',
    advertise: null,
    protocol: 5,
    secret: o.proof != null,
    proof: o.proof ?? null,
  };
  return {
    hello,
    device: o.device ?? B,
    ekm: o.ekm ?? randomBytes(32),
    role: o.role ?? 'dialler',
    remoteLoopback: o.remoteLoopback ?? true,
    expected: o.expected ?? null,
  };
}

describe('Admission', () => {
  it('admits a proof of the secret made over this channel, for these devices, in this role', () => {
    const adm = us({ secret: 's' });
    const ekm = randomBytes(32);
    const proof = linkProof('s', ekm, 'dialler', { node: 2, device: B }, A);
    expect(adm.decide(candidate({ ekm, proof })).ok).toBe(true);
    // Relayed onto another channel, or shown by another device, or reflected: refused.
    expect(adm.decide(candidate({ proof })).ok).toBe(false);
    expect(adm.decide(candidate({ ekm, proof, device: X })).ok).toBe(false);
    expect(adm.decide(candidate({ ekm, proof, role: 'listener' })).ok).toBe(false);
    expect(
      adm.decide(
        candidate({ ekm, proof: linkProof('t', ekm, 'dialler', { node: 2, device: B }, A) }),
      ),
    ).toEqual({ ok: false, reason: 'wrong cluster secret' });
    expect(adm.decide(candidate({ ekm })).ok).toBe(false);
  });

  it('a rebuilt node (same id, new device) is admitted by the secret', () => {
    const adm = us({ secret: 's' });
    adm.learn(2, X);
    const ekm = randomBytes(32);
    const proof = linkProof('s', ekm, 'dialler', { node: 2, device: B }, A);
    expect(adm.decide(candidate({ ekm, proof })).ok).toBe(true);
  });

  it('without a secret: pinned or learned devices only, and an id keeps its device', () => {
    const adm = us({ pinned: [B] });
    expect(adm.decide(candidate())).toEqual({ ok: true, how: 'pinned' });
    const other = adm.decide(candidate({ device: X }));
    expect(other.ok).toBe(false);
    // X claiming node 2 (known as B) is refused even once X is pinned.
    adm.pin(X);
    expect(adm.decide(candidate({ device: X }))).toMatchObject({ ok: false });
    expect(adm.decide(candidate({ device: X, node: 3 })).ok).toBe(true);
    // Learned from a peer record.
    adm.learn(7, 'CCCCCCCC-CCCCCCCC-CCCCCCCC-CCCCCCCC-CCCCCCCC-CCCCCCCC');
    expect(
      adm.decide(
        candidate({ node: 7, device: 'CCCCCCCC-CCCCCCCC-CCCCCCCC-CCCCCCCC-CCCCCCCC-CCCCCCCC' }),
      ).ok,
    ).toBe(true);
  });

  it('a pinned dial accepts only the device it names', () => {
    const adm = us({ pinned: [B] });
    expect(adm.decide(candidate({ expected: X })).ok).toBe(false);
    expect(adm.decide(candidate({ expected: B })).ok).toBe(true);
  });

  it('demo mode (no secret, no pins) admits loopback only', () => {
    expect(us().decide(candidate()).ok).toBe(true);
    expect(us().decide(candidate({ remoteLoopback: false })).ok).toBe(false);
    expect(us({ localLoopback: false }).decide(candidate()).ok).toBe(false);
    expect(
      us({ insecure: true, localLoopback: false }).decide(candidate({ remoteLoopback: false })).ok,
    ).toBe(true);
  });
});
