import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  admitFileEntry,
  FILE_PREFIX,
  keyOf,
  MAX_PATH_BYTES,
  pathProblem,
  RESERVED_DIR,
} from './paths.js';
import { encodeRecord, isOwnEncoding, type FileRecord } from './record.js';

/** The rule as DESIGN states it, written the obvious way: the fast version must agree. */
function reference(p: string): string | null {
  if (p.length === 0) return 'empty path';
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) return `path longer than ${MAX_PATH_BYTES} bytes`;
  if (p.includes('\0')) return 'NUL in path';
  if (p.includes('\\')) return 'backslash in path';
  if (p.startsWith('/')) return 'absolute path';
  if (p.normalize('NFC') !== p) return 'path not in NFC';
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return `bad segment ${JSON.stringify(seg)}`;
  }
  if (p === RESERVED_DIR || p.startsWith(RESERVED_DIR + '/')) return `path under ${RESERVED_DIR}/`;
  if (p.split('/').some((seg) => Buffer.byteLength(seg) > 255))
    return 'a name longer than 255 bytes';
  return null;
}

describe('pathProblem', () => {
  it('accepts ordinary paths and names each kind of bad one', () => {
    const long = Array.from({ length: 16 }, () => 'x'.repeat(255)).join('/'); // 4095 bytes
    for (const ok of ['a', 'a/b.txt', '...', 'a/.../b', '.hidden/x', 'é/ü', long, 'é'.repeat(127)])
      expect(pathProblem(ok)).toBeNull();
    const bad: Array<[string, string]> = [
      ['', 'empty path'],
      ['é'.repeat(2049), 'path longer than 4096 bytes'],
      ['a\0b', 'NUL in path'],
      ['a\\b', 'backslash in path'],
      ['/etc/passwd', 'absolute path'],
      ['e\u0301', 'path not in NFC'],
      ['a//b', 'bad segment ""'],
      ['a/', 'bad segment ""'],
      ['./a', 'bad segment "."'],
      ['a/..', 'bad segment ".."'],
      ['../a', 'bad segment ".."'],
      ['.filesync/tmp/x', 'path under .filesync/'],
      ['x'.repeat(256), 'a name longer than 255 bytes'],
      [`a/${'é'.repeat(128)}/b`, 'a name longer than 255 bytes'],
    ];
    for (const [p, why] of bad) expect(pathProblem(p)).toBe(why);
  });

  it('agrees with the plain statement of the rule on any string', () => {
    const part = fc.constantFrom(
      '',
      '.',
      '..',
      '...',
      'a',
      'é',
      'e\u0301',
      '\\',
      '\0',
      '.filesync',
    );
    const arb = fc.oneof(
      fc.array(part, { maxLength: 6 }).map((xs) => xs.join('/')),
      fc.string({ unit: 'binary', maxLength: 30 }),
    );
    fc.assert(
      fc.property(arb, (p) => pathProblem(p) === reference(p)),
      { numRuns: 3000 },
    );
  });
});

describe('admitFileEntry', () => {
  const record: FileRecord = {
    type: 'file',
    size: 1,
    mtimeMs: 1,
    mode: 0o644,
    hash: 'a'.repeat(64),
    blocks: [],
    target: null,
    prev: null,
    history: [],
  };
  const meta = { node: 1, seq: 1, ts: 1 };

  it('decodes what it did not encode itself, and trusts only its own encodings', () => {
    const own = encodeRecord(record);
    expect(isOwnEncoding(own)).toBe(true);
    const copy = Uint8Array.from(own); // the same bytes off the wire: checked
    expect(isOwnEncoding(copy)).toBe(false);
    expect(admitFileEntry({ key: keyOf('a'), value: copy, meta })).toBeNull();
    // A malformed record is refused whoever made it: ours too, as before we trusted our own.
    const bad = encodeRecord({ ...record, hash: 'not hex' });
    expect(isOwnEncoding(bad)).toBe(false);
    for (const value of [bad, Uint8Array.from(bad)])
      expect(admitFileEntry({ key: keyOf('a'), value, meta })).toBe('malformed file record');
    expect(admitFileEntry({ key: `${FILE_PREFIX}../a`, value: own, meta })).toMatch(/^unsafe path/);
  });

  it('refuses records whose fields do not fit their kind (they could never be applied)', () => {
    const h = 'b'.repeat(64);
    const bad: FileRecord[] = [
      { ...record, type: 'dir', hash: '', blocks: [h, h] },
      { ...record, type: 'dir', hash: '', size: 5 },
      { ...record, type: 'deleted', hash: h, size: 0, blocks: [h] },
      { ...record, type: 'symlink', hash: '', target: 'x', blocks: [h] },
      { ...record, size: 3 * 1024 * 1024, blocks: [h] },
      { ...record, size: 10, blocks: [h] },
      { ...record, target: '/etc' },
    ];
    for (const r of bad)
      expect(
        admitFileEntry({ key: keyOf('a'), value: encodeRecord(r), meta }),
        JSON.stringify(r),
      ).toBe('malformed file record');
    const good: FileRecord[] = [
      record,
      { ...record, type: 'dir', hash: '', size: 0 },
      { ...record, type: 'deleted', hash: '', size: 0, mode: 0 },
      { ...record, type: 'deleted', hash: h, size: 0, mode: 0 }, // the content it deleted
      { ...record, type: 'symlink', hash: '', size: 1, target: 'x' },
      { ...record, size: 3 * 1024 * 1024, blocks: [h, h, h] },
    ];
    for (const r of good)
      expect(admitFileEntry({ key: keyOf('a'), value: encodeRecord(r), meta })).toBeNull();
  });

  it('admits a peer record only from the node it names, and no key of an unknown kind', () => {
    const peer = Buffer.from(JSON.stringify({ addr: null, incarnation: 'x' }));
    expect(admitFileEntry({ key: '__peer/7', value: peer, meta: { ...meta, node: 7 } })).toBeNull();
    expect(admitFileEntry({ key: '__peer/7', value: null, meta: { ...meta, node: 8 } })).toMatch(
      /written by node 8/,
    );
    expect(
      admitFileEntry({ key: '__peer/7', value: new Uint8Array(2000), meta: { ...meta, node: 7 } }),
    ).toBe('malformed peer record');
    expect(admitFileEntry({ key: '__junk/1', value: null, meta })).toBe('not a filesync key');
  });
});
