import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

// `npm ci` builds dist/ (the `prepare` script); the CLI's TUI loads dist/tui/start.js.
describe('the built TUI', () => {
  it('is one file: Ink and React inside it, in production form, with no package imports', async () => {
    const js = await readFile(new URL('../../dist/tui/start.js', import.meta.url), 'utf8').catch(
      () => {
        throw new Error('dist/tui/start.js is missing: run `npm run build`');
      },
    );
    const imports = [...js.matchAll(/(?:^|\n)\s*import\b[^'"]*['"]([^'"]+)['"]/g)].map((m) => m[1]);
    expect(imports.every((s) => s!.startsWith('node:'))).toBe(true);
    expect(js).toContain('var useInput = '); // Ink
    expect(js).not.toContain('react-reconciler.development');
    expect(js).not.toMatch(/['"]es-toolkit\/compat['"]/);
  });
});
