// Shutdown is process-wide and final, so it has its own file (node --test runs each file in
// its own process).
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../index.mjs';

test('shutdown flushes, then every emitting call is already_shutdown', async () => {
  /** @type {string[]} */
  const got = [];
  baton.subscribe('s', (e) => { got.push(e.name); });
  const s = baton.push('last');
  baton.pop(s);
  assert.equal(await baton.shutdown({ timeout: 5000 }), true);
  assert.deepEqual(got, ['last', 'last']);
  assert.equal(baton.isShutdown(), true);
  const isShut = (/** @type {unknown} */ e) => e instanceof baton.BatonError && e.code === 'already_shutdown';
  assert.throws(() => baton.push('x'), isShut);
  assert.throws(() => baton.mark('x'), isShut);
  await assert.rejects(baton.tool('x', {}, () => 1), isShut);
  await assert.rejects(baton.flush(), isShut);
  await assert.rejects(baton.shutdown(), isShut);
});
