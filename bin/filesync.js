#!/usr/bin/env node
// The filesync command. Runs the TypeScript sources through tsx, so a clone works right after
// `npm ci` with no build step and never runs stale output.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
