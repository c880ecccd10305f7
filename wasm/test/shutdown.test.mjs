// shutdown is final for the module instance: its own process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../dist/index.mjs';

test('shutdown delivers what is queued, then operations are already_shutdown', async () => {
  const seen = [];
  baton.subscribe('s', (e) => seen.push(e.name));
  baton.mark('last');
  assert.equal(await baton.shutdown(), true);
  assert.deepEqual(seen, ['last']);
  assert.equal(baton.isShutdown(), true);
  assert.throws(() => baton.push('x'), (e) => e.code === 'already_shutdown');
  // Calls refuse too, whether the module is asked first if anything is registered (no options)
  // or the call is entered right away (options).
  assert.throws(() => baton.toolSync('t', 1, (x) => x), (e) => e.code === 'already_shutdown');
  await assert.rejects(baton.tool('t', 1, (x) => x), (e) => e.code === 'already_shutdown');
  assert.throws(() => baton.toolSync('t', 1, (x) => x, { toolCallId: 'c' }), (e) => e.code === 'already_shutdown');
  await assert.rejects(baton.tool('t', 1, (x) => x, { toolCallId: 'c' }), (e) => e.code === 'already_shutdown');
  await assert.rejects(baton.shutdown(), (e) => e.code === 'already_shutdown');
});
