import { describe, expect, it } from 'vitest';
import { formatText, LogLimiter } from './index.js';

describe('text log lines', () => {
  it('cannot be forged by a name holding a newline or terminal escapes', () => {
    const line = formatText({
      time: 0,
      level: 'warn',
      ns: 'applier',
      msg: 'not applied\n1970-01-01T00:00:00.000Z INFO  [x] forged',
      fields: {
        path: 'a\nb\r\u2028',
        color: 'x\x1b[31m\x85',
        n: 1,
        obj: { k: 'v\n' },
        ok: 'plain',
      },
    });
    expect(line.split('\n')).toHaveLength(1);
    // eslint-disable-next-line no-control-regex
    expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028]/);
    expect(line).toContain('path="a\\nb\\r\\u2028"');
    expect(line).toContain('color="x\\u001b[31m\\u0085"');
    expect(line).toContain(' ok=plain');
    expect(
      formatText({
        time: 0,
        level: 'info',
        ns: 'x',
        msg: 'm',
        fields: { ms: 16.682972000000007, n: 3 },
      }),
    ).toMatch(/ ms=16\.68 n=3$/);
  });
});

describe('LogLimiter', () => {
  it('lets one message per key through per interval and counts the rest', () => {
    const l = new LogLimiter(60_000, 2);
    expect(l.allow('p1:admission', 0)).toBe(0);
    expect(l.allow('p1:admission', 10)).toBeNull();
    expect(l.allow('p1:admission', 20)).toBeNull();
    expect(l.allow('p2:admission', 30)).toBe(0);
    expect(l.allow('p1:admission', 60_001)).toBe(2);
    // Bounded: a third key pushes out the oldest.
    expect(l.allow('p3:x', 60_002)).toBe(0);
    expect(l.allow('p2:admission', 60_003)).toBe(0);
  });
});
