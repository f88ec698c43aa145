import { describe, expect, it } from 'vitest';
import { deletedRecord, encodeRecord, isDeletedRecord, MAX_HISTORY } from './record.js';

const big = Number.MAX_SAFE_INTEGER;
const deleted = deletedRecord(
  [4294967295, big],
  Array.from({ length: MAX_HISTORY }, () => [4294967295, big] as const),
  big,
  'f'.repeat(64), // the content it deleted
);

describe('isDeletedRecord', () => {
  it('knows a delete record, the largest one included, and nothing else', () => {
    expect(isDeletedRecord(encodeRecord(deleted))).toBe(true);
    expect(isDeletedRecord(encodeRecord({ ...deleted, prev: null, history: [] }))).toBe(true);
    const link = { ...deleted, type: 'symlink' as const, size: 7, target: 'deleted' };
    expect(isDeletedRecord(encodeRecord(link))).toBe(false); // the word alone is not enough
    expect(isDeletedRecord(new Uint8Array([0xa7, ...Buffer.from('deleted')]))).toBe(false);
  });
});
