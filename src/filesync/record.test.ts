import { describe, expect, it } from 'vitest';
import { encodeRecord, isDeletedRecord, MAX_HISTORY, type FileRecord } from './record.js';

const big = Number.MAX_SAFE_INTEGER;
const deleted: FileRecord = {
  type: 'deleted',
  size: 0,
  mtimeMs: 0,
  mode: 0,
  hash: '',
  blocks: [],
  target: null,
  prev: [4294967295, big],
  history: Array.from({ length: MAX_HISTORY }, () => [4294967295, big] as const),
};

describe('isDeletedRecord', () => {
  it('knows a delete record, the largest one included, and nothing else', () => {
    expect(isDeletedRecord(encodeRecord(deleted))).toBe(true);
    expect(isDeletedRecord(encodeRecord({ ...deleted, prev: null, history: [] }))).toBe(true);
    const link = { ...deleted, type: 'symlink' as const, size: 7, target: 'deleted' };
    expect(isDeletedRecord(encodeRecord(link))).toBe(false); // the word alone is not enough
    expect(isDeletedRecord(new Uint8Array([0xa7, ...Buffer.from('deleted')]))).toBe(false);
  });
});
