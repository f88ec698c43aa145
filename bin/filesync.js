#!/usr/bin/env node
// The filesync command. Runs the TypeScript sources through tsx, so a clone works right after
// `npm ci` with no build step and never runs stale output.
import { register } from 'tsx/esm/api';

// React (the TUI) is several times slower in development mode.
process.env.NODE_ENV ??= 'production';
register();
await import('../src/cli/main.ts');
