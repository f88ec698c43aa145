// Rebuilds dist/tui/start.js (compiled by tsc) as one file holding Ink and React: the build's
// second step (`npm run build`). Loaded as packages, they cost a TUI node about 5 MiB of RSS:
// Ink imports all of es-toolkit's compat layer (some 300 modules) for one `throttle`, and
// Node's CommonJS loader reads the development builds of React beside the production ones.
// Bundled, only what is used is loaded, in its production form. Figures: docs/decisions.md.
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/tui/start.js'],
  outfile: 'dist/tui/start.js',
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  define: { 'process.env.NODE_ENV': '"production"' },
  // Ink loads its React devtools bridge only under DEV=true; the bridge is not installed.
  external: ['./devtools.js'],
  // Bundled CommonJS (React, signal-exit) still calls require() for Node's built-ins.
  banner: {
    js: "import { createRequire as __tuiRequire } from 'node:module'; const require = __tuiRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
// tsc's source map describes the file this one replaced.
await rm('dist/tui/start.js.map', { force: true });
