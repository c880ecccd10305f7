// A Rust panic is an `internal` error with its message; the instance is then refused (its own
// process: this poisons the module for good).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../dist/index.mjs';

test('a panic surfaces as internal and poisons the instance visibly', () => {
  const err = console.error;
  console.error = () => {};
  try {
    assert.throws(() => baton._debugPanic('kaboom'), (e) => e instanceof baton.BatonError && e.code === 'internal' && /kaboom/.test(e.message));
    assert.throws(() => baton.push('after'), (e) => e.code === 'internal' && /trapped.*kaboom/.test(e.message));
  } finally {
    console.error = err;
  }
});
