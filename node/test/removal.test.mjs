// A JS subscriber removed right after events it is due: its own process, since the removal
// race only shows when no other JS subscriber is registered (any other one's end of batch
// hands the pending segment over).
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../index.mjs';

test('a subscriber removed in the batch of its last events still gets them, at once', async () => {
  // The removal and the events usually reach the dispatcher in one batch (it waits 50 µs
  // between batches); then the subscriber gets no end of batch, and its close must hand the
  // segment over. Before that fix, its events waited until another JS subscriber's batch
  // ended: a flush or shutdown returned without them.
  for (let round = 0; round < 200; round++) {
    /** @type {string[]} */
    const got = [];
    baton.subscribe('removed', (e) => { got.push(e.name); });
    baton.mark(`m${round}`);
    baton.deregister('subscriber', 'removed');
    assert.equal(await baton.flush({ timeout: 5000 }), true);
    assert.deepEqual(got, [`m${round}`], `round ${round}`);
  }
});

test('shutdown right after the last events delivers them before it resolves', async () => {
  /** @type {string[]} */
  const got = [];
  baton.subscribe('last', (e) => { got.push(`${e.name}:${e.kind === 'scope' ? e.scope_category : e.kind}`); });
  const s = baton.push('a');
  baton.pop(s);
  baton.mark('m');
  assert.equal(await baton.shutdown({ timeout: 5000 }), true);
  assert.deepEqual(got, ['a:start', 'a:end', 'm:mark']);
});
