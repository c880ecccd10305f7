// ESLint (flat config) for the Node package: the recommended rules over the facade, the modules
// it shares with the wasm package (lib/), the tests and the benchmarks. `just test-node` runs it.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/**'] },
  js.configs.recommended,
  { files: ['**/*.js', '**/*.cjs'], languageOptions: { sourceType: 'commonjs', ecmaVersion: 2022, globals: globals.node } },
  { files: ['**/*.mjs'], languageOptions: { sourceType: 'module', ecmaVersion: 2022, globals: globals.node } },
  // A leading underscore marks a binding left unused on purpose (a loop that only drains).
  { rules: { 'no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', caughtErrors: 'none' }] } },
];
