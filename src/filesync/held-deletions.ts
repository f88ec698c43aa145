import path from 'node:path';
import { nodeStoreDisk, writeFileAtomic, type StoreDisk } from '../store/index.js';

/**
 * The mass-delete guard's state, kept on disk: once deletions are held (the folder vanished or
 * was emptied while the index held files) they stay held, across restarts and whatever is
 * created meanwhile, until the user allows them (`--allow-mass-delete`) or every file the
 * index holds is back. Otherwise one new file and a restart released every held delete.
 */
export class HeldDeletions {
  constructor(
    private readonly marker: string,
    public held: boolean,
    /** The data dir's disk (the store's port). */
    private readonly disk: StoreDisk = nodeStoreDisk,
  ) {}

  /** The state a previous run left in `dataDir`; a marker that cannot be read counts as held. */
  static async load(
    dataDir: string,
    allow: boolean,
    disk: StoreDisk = nodeStoreDisk,
  ): Promise<HeldDeletions> {
    const marker = path.join(dataDir, 'deletions-held');
    if (allow) await disk.remove(marker);
    let held = !allow;
    if (held) {
      try {
        await disk.readFile(marker);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') held = false;
      }
    }
    return new HeldDeletions(marker, held, disk);
  }

  async hold(why: string): Promise<void> {
    if (this.held) return;
    this.held = true;
    const note = JSON.stringify({ since: new Date().toISOString(), why }) + '\n';
    await writeFileAtomic(this.marker, Buffer.from(note), 0o666, this.disk);
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await this.disk.remove(this.marker);
  }
}
