import { rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The mass-delete guard's state, kept on disk: once deletions are held (the folder vanished or
 * was emptied while the index held files) they stay held, across restarts and whatever is
 * created meanwhile, until the user allows them (`--allow-mass-delete`) or every file the
 * index holds is back. Otherwise one new file and a restart released every held delete.
 */
export class HeldDeletions {
  private readonly marker: string;
  held: boolean;

  constructor(dataDir: string, allow: boolean) {
    this.marker = path.join(dataDir, 'deletions-held');
    if (allow) rmSync(this.marker, { force: true });
    this.held = !allow && existsSync(this.marker);
  }

  hold(why: string): void {
    if (this.held) return;
    this.held = true;
    writeFileSync(this.marker, JSON.stringify({ since: new Date().toISOString(), why }) + '\n');
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    rmSync(this.marker, { force: true });
  }
}
