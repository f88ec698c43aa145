import { describe, expect, it } from 'vitest';
import { BUCKET_COUNT, MAX_BLOCK_BYTES } from './messages.js';
import { parseMessage, ProtocolError } from './parse.js';

const entry = ['k', new Uint8Array([1]), 1, 1, 1];
/** One well-formed message of every type a peer may send. */
const good: Record<string, Record<string, unknown>> = {
  sync: {
    rid: 1,
    from: 2,
    incarnation: 'x',
    acks: [1, 1],
    entries: [entry],
    complete: true,
    reset: false,
  },
  page: { rid: 1, round: 2, offset: 0 },
  buckets: { rid: 1 },
  'sync-res': { rid: 1, acks: [], digest: 'd', entries: [], last: true, merged: true, yours: 0 },
  push: { id: 1, entries: [entry] },
  'push-ok': { id: 1 },
  'sync-ok': { round: 1 },
  'buckets-res': { rid: 1, digests: Array.from({ length: BUCKET_COUNT }, () => 'd') },
  'bucket-entries': { rid: 1, buckets: [0, 255], entries: [] },
  'bucket-entries-res': { rid: 1, entries: [] },
  block: { rid: 1, key: 'k', node: 1, seq: 1, index: 0, hash: 'h' },
  'block-res': { rid: 1, data: null },
  blocks: { rid: 1, refs: [['k', 1, 1, 0, 'h']] },
  'blocks-res': { rid: 1, data: [null, new Uint8Array(3)] },
  error: { rid: 1, message: 'no' },
};

describe('parseMessage', () => {
  it('takes a well-formed message of every type', () => {
    for (const [t, fields] of Object.entries(good)) {
      expect(parseMessage({ t, ...fields }, 10).t).toBe(t);
    }
  });

  it('names the field that is wrong, one line, for each type', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['sync', { from: 0 }, 'bad sync message: from'],
      ['sync', { entries: [entry, entry] }, 'bad sync message: entries'], // over maxEntries 1
      ['sync', { reset: 'yes' }, 'bad sync message: flags'],
      ['page', { offset: -1 }, 'bad page message: rid, round or offset'],
      ['sync-res', { yours: 1.5 }, 'bad sync-res message: yours'],
      ['buckets-res', { digests: ['d'] }, 'bad buckets-res message: digests'],
      ['bucket-entries', { buckets: [BUCKET_COUNT] }, 'bad bucket-entries message: buckets'],
      ['block', { hash: 'h'.repeat(65) }, 'bad block message: hash'],
      ['block-res', { data: new Uint8Array(MAX_BLOCK_BYTES + 1) }, 'bad block-res message: data'],
      ['error', { message: 'x'.repeat(1001) }, 'bad error message: message'],
      ['push-ok', { id: '1' }, 'bad push-ok message: id'],
    ];
    for (const [t, change, why] of cases) {
      expect(() => parseMessage({ t, ...good[t], ...change }, 1), why).toThrow(
        new ProtocolError(why),
      );
    }
  });

  it('refuses what is not a map, and types it does not know', () => {
    for (const x of [null, 3, 'sync', [{ t: 'sync' }]]) {
      expect(() => parseMessage(x, 10)).toThrow('message is not a map');
    }
    expect(() => parseMessage({ t: 'hello' }, 10)).toThrow('unknown message type "hello"');
    expect(() => parseMessage({ t: 'toString' }, 10)).toThrow('unknown message type');
  });
});
