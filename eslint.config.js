// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // The mirror uses the store and the transport only through their public index.
    files: ['src/filesync/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [mirrorBoundary],
        },
      ],
    },
  },
  {
    // Modules moved behind the disk port (src/filesync/disk.ts) touch the disk only through it,
    // so their rules run on the in-memory disk too.
    files: [
      'src/filesync/type-clash.ts',
      'src/filesync/mem-disk.ts',
      'src/filesync/applier.ts',
      'src/filesync/trash.ts',
      'src/filesync/safe-fs.ts',
      'src/filesync/dir-sync.ts',
      'src/filesync/scanner.ts',
      'src/filesync/stat.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            mirrorBoundary,
            { regex: '^(node:)?fs(/promises)?$', message: 'the disk only through the Disk port' },
          ],
        },
      ],
    },
  },
);
