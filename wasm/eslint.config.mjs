// ESLint (flat config) for the wasm package: the recommended rules over the facade template
// (lib/api.js; the modules it embeds from node/lib/ are linted in node/), the build script,
// the tests and the benchmark. `just test-wasm` runs it.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/**', 'dist/**'] },
  js.configs.recommended,
  {
    // A template body that scripts/build.mjs wraps: `common` is what the wrapper evaluated from
    // node/lib/, and the file runs in Node, browsers and edge runtimes alike.
    files: ['lib/api.js'],
    languageOptions: { sourceType: 'script', ecmaVersion: 2022, globals: { ...globals.node, ...globals.browser, common: 'readonly' } },
  },
  { files: ['**/*.mjs'], languageOptions: { sourceType: 'module', ecmaVersion: 2022, globals: { ...globals.node, ...globals.browser } } },
  // A leading underscore marks a binding left unused on purpose (a loop that only drains).
  { rules: { 'no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', caughtErrors: 'none' }] } },
];
