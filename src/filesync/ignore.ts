import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { logger } from '../log/index.js';
import { RESERVED_DIR } from './paths.js';

const log = logger('filesync');
export const IGNORE_FILE = '.filesyncignore';

/**
 * Ignore rules: `.filesyncignore` at the root (gitignore syntax, via the `ignore` package; the
 * file itself syncs like any other) plus `--ignore` patterns. `.filesync/` is always ignored.
 * Rules hold both ways: ignored paths are neither published nor written when received.
 */
export class IgnoreRules {
  private matcher: Ignore;
  private fileText = '';

  constructor(
    private readonly root: string,
    private readonly extra: readonly string[],
  ) {
    this.matcher = this.build('');
  }

  private build(text: string): Ignore {
    return ignore()
      .add(this.extra as string[])
      .add(text);
  }

  /** Re-read `.filesyncignore`; returns true when the rules changed. */
  async reload(): Promise<boolean> {
    let text = '';
    try {
      text = await readFile(path.join(this.root, IGNORE_FILE), 'utf8');
    } catch {
      text = '';
    }
    if (text === this.fileText) return false;
    this.fileText = text;
    this.matcher = this.build(text);
    log.info('ignore rules loaded', {
      file: IGNORE_FILE,
      patterns: text.split('\n').filter((l) => l.trim() && !l.startsWith('#')).length,
    });
    return true;
  }

  /** Is this relative path ignored? Directories may be tested with or without a trailing slash. */
  ignores(rel: string, isDir = false): boolean {
    if (rel === RESERVED_DIR || rel.startsWith(RESERVED_DIR + '/')) return true;
    if (rel === IGNORE_FILE) return false;
    try {
      return this.matcher.ignores(isDir ? rel + '/' : rel) || (isDir && this.matcher.ignores(rel));
    } catch {
      return false;
    }
  }
}
