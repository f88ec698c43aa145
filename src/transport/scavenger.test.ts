import { describe, expect, it } from 'vitest';
import { Scavenger } from './scavenger.js';

describe('scavenger', () => {
  it('asks for a young-generation GC once per budget of frame bytes', () => {
    const asked: string[] = [];
    const s = new Scavenger((o) => asked.push(o.type), 1000);
    s.note(600);
    expect(asked).toEqual([]);
    s.note(600); // 1200: over the budget once
    expect(asked).toEqual(['minor']);
    for (let i = 0; i < 10; i++) s.note(500);
    expect(asked).toHaveLength(6);
    expect(s.scavenges).toBe(6);
  });

  it('does nothing where node runs without --expose-gc', () => {
    const s = new Scavenger(null, 1);
    s.note(10);
    expect(s.scavenges).toBe(0);
  });
});
