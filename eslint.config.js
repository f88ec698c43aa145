// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** node:fs in any of its spellings. */
const FS = '^(node:)?fs(/promises)?$';

/**
 * The real sides of the mirror's ports, the only mirror modules that touch the disk: the
 * `Disk` port's (disk.ts, with its fast paths: the hasher, localfs's inline reads and writes,
 * direct-io's O_DIRECT downloads) and the hints' (watcher.ts: chokidar; the simulator has its
 * own). The transfer reads and writes through the `Disk` port like the rest. The index, its
 * journal and the markers live in the data dir, on the store's disk port.
 */
const mirrorFsAllowed = ['disk', 'hasher', 'localfs', 'direct-io', 'watcher'].map(
  (m) => `src/filesync/${m}.ts`,
);

/** The mirror uses the store and the transport only through their public index. */
const mirrorBoundary = {
  regex: '^\\.\\./(transport/|store/(?!index\\.js$))',
  message: 'through the store public index only, never the transport',
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'bench/tmp/', 'bin/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Small functions and files: each can be read whole (tests excepted).
    files: ['src/**/*.ts', 'src/**/*.tsx'],
    ignores: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    rules: {
      'max-lines-per-function': ['error', { max: 70, skipBlankLines: true, skipComments: true }],
      'max-lines': ['error', { max: 400, skipBlankLines: false, skipComments: false }],
    },
  },
  {
    // The core is a pure state machine: no I/O, no clock, no timers.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['node:*', 'fs', '../*'] }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'process'],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now' },
        { object: 'Math', property: 'random' },
      ],
    },
  },
  {
    // Sync sees peers through its Transport port and time through its Scheduler: it imports
    // only the core and the logger.
    files: ['src/sync/**/*.ts'],
    ignores: ['src/sync/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'sync does no I/O of its own' },
            {
              regex: '^\\.\\./(?!core/index\\.js$|log/index\\.js$)',
              message: 'sync imports only the core and the logger',
            },
          ],
        },
      ],
    },
  },
  {
    // The mirror uses the store and the transport only through their public index, and the
    // disk only through its port (src/filesync/disk.ts), so its rules run on the in-memory
    // disk too.
    files: ['src/filesync/**/*.ts'],
    ignores: mirrorFsAllowed,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [mirrorBoundary, { regex: FS, message: 'the disk only through the Disk port' }],
        },
      ],
    },
  },
  {
    // Tests set up real trees on the real disk.
    files: [...mirrorFsAllowed, 'src/filesync/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [mirrorBoundary] }] },
  },
  {
    // WaveKV's durability goes through the store's disk port (src/store/disk.ts), so the
    // simulator runs the same WAL, snapshot and identity code on a disk that loses unsynced
    // writes.
    files: ['src/store/**/*.ts', 'src/node/**/*.ts'],
    ignores: ['src/store/disk.ts', 'src/store/fsutil.ts', 'src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: FS, message: 'the disk only through StoreDisk (store/disk.ts)' }] },
      ],
    },
  },
);
