import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { logger } from '../log/index.js';
import { realDisk, type Disk } from './disk.js';
import { RESERVED_DIR } from './paths.js';

const log = logger('filesync');
export const IGNORE_FILE = '.filesyncignore';

/**
 * Ignore rules: `.filesyncignore` at the root (gitignore syntax, via the `ignore` package; the
 * file itself syncs like any other) plus `--ignore` patterns. `.filesync/` is always ignored.
 * Rules hold both ways: ignored paths are neither published nor written when received.
 */
/**
 * Paths tested between rebuilds of the matcher. `ignore` caches the answer for every path it is
 * ever asked about, and its parents, in a plain object that never shrinks: ~10 MiB per node at
 * 100,000 files. Rebuilding (parsing the patterns again) drops that cache.
 */
export const MATCHER_TESTS_PER_BUILD = 16_384;

export class IgnoreRules {
  private matcher: Ignore;
  private fileText = '';
  /** No pattern at all (the common case): nothing to ask the matcher. */
  private empty: boolean;
  private tests = 0;

  constructor(
    private readonly root: string,
    private readonly extra: readonly string[],
    private readonly disk: Disk = realDisk,
  ) {
    this.matcher = this.build('');
    this.empty = !hasPatterns(extra.join('\n'));
  }

  private build(text: string): Ignore {
    this.tests = 0;
    return ignore()
      .add(this.extra as string[])
      .add(text);
  }

  /** Re-read `.filesyncignore`; returns true when the rules changed. */
  async reload(): Promise<boolean> {
    let text = '';
    try {
      text = (await this.disk.readWhole(path.join(this.root, IGNORE_FILE))).toString('utf8');
    } catch {
      text = '';
    }
    if (text === this.fileText) return false;
    this.fileText = text;
    this.matcher = this.build(text);
    this.empty = !hasPatterns([...this.extra, text].join('\n'));
    log.info('ignore rules loaded', {
      file: IGNORE_FILE,
      patterns: text.split('\n').filter((l) => l.trim() && !l.startsWith('#')).length,
    });
    return true;
  }

  /** The rules as they are now, kept as they are whatever `reload` does later. */
  frozen(): IgnoreRules {
    const copy = new IgnoreRules(this.root, this.extra, this.disk);
    copy.fileText = this.fileText;
    copy.matcher = copy.build(this.fileText);
    copy.empty = this.empty;
    return copy;
  }

  /** Is this relative path ignored? Directories may be tested with or without a trailing slash. */
  ignores(rel: string, isDir = false): boolean {
    if (rel === RESERVED_DIR || rel.startsWith(RESERVED_DIR + '/')) return true;
    if (rel === IGNORE_FILE || this.empty) return false;
    if (++this.tests > MATCHER_TESTS_PER_BUILD) this.matcher = this.build(this.fileText);
    try {
      return this.matcher.ignores(isDir ? rel + '/' : rel) || (isDir && this.matcher.ignores(rel));
    } catch {
      return false;
    }
  }
}

/** Does gitignore text hold any pattern (a line that is neither blank nor a comment)? */
function hasPatterns(text: string): boolean {
  return text.split(/\r?\n/).some((l) => l.trim() !== '' && !l.startsWith('#'));
}
