import { describe, expect, it } from 'vitest';
import { MemStoreDisk } from '../store/index.js';
import { markRunning, markStopped } from './run-marker.js';

describe('the running marker', () => {
  it('tells a clean stop, a killed process and a machine that went down apart', async () => {
    const mem = new MemStoreDisk();
    const disk = mem.view();
    await disk.mkdirp('/data');
    expect(await markRunning('/data', disk, 'boot-1')).toBe('clean'); // a first start
    mem.kill();
    const again = mem.view();
    expect(await markRunning('/data', again, 'boot-1')).toBe('killed');
    mem.crash();
    const rebooted = mem.view();
    expect(await markRunning('/data', rebooted, 'boot-2')).toBe('power-loss');
    await markStopped('/data', rebooted);
    expect(await markRunning('/data', rebooted, 'boot-2')).toBe('clean');
    expect(await markRunning('/data', rebooted, null)).toBe('power-loss'); // no boot id to tell
  });
});
