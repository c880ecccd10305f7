// Entered async calls (only subscribers registered) are held by the addon under a token while
// they run (crates/node/src/entered.rs); their fork gets a JS handle only if the function uses
// Baton. These tests check that nothing is kept per call once calls end, even in a loop that
// never lets the event loop turn, and that a token that ended or was made up ends nothing.
// Run: node --test test/
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as baton from '../index.mjs';
import { assertNoGrowthPerWindow } from './cases/rss.mjs';

const load = createRequire(import.meta.url);
/** The addon the facade loaded (the same module instance: same file). */
const native = load('../baton.node');
/** The facade's host-value table (the same module instance: same file). */
const hostValues = load('../lib/hostvalues.js');

test('an awaited loop of entered calls keeps nothing per call, without turning the event loop', async () => {
  let events = 0;
  baton.subscribe('count-entered', () => { events++; });
  try {
    const before = native.enteredRunning();
    let inside = -1;
    await baton.tool('probe', {}, async () => { inside = native.enteredRunning(); return null; });
    assert.equal(inside, before + 1, 'the call is held while it runs');
    assert.equal(native.enteredRunning(), before, 'and freed when it ends');
    // Only microtasks: N-API finalizers and FinalizationRegistry callbacks cannot run here (so
    // no forced GC either), and anything per call that waits for them would pile up (a handle
    // per call used to hold ~0.8 KB: ~76 MiB per window). Judged per window (cases/rss.mjs).
    const W = 100000;
    let calls = 0;
    await assertNoGrowthPerWindow(async () => {
      for (let i = 0; i < W; i++) await baton.tool('loop', { i }, async (a) => a);
      calls += W;
      assert.ok(hostValues.held() <= 1 << 16, `host-value table bounded: ${hostValues.held()}`);
    }, { windows: 4, limitMiB: 40, what: `awaited entered calls, ${W} per window` });
    assert.equal(native.enteredRunning(), before);
    await baton.flush();
    assert.equal(events, 2 * (calls + 1));
  } finally {
    baton.deregister('subscriber', 'count-entered');
  }
});

test('a token that ended or was made up ends nothing and reaches no fork', async () => {
  baton.subscribe('tokens', () => {});
  try {
    const stack = native.newStack();
    const t = native.enterTool(stack, 'first', '{}', undefined, true);
    assert.equal(typeof t, 'number');
    assert.notEqual(native.enteredStack(t), null);
    native.exitForked(t, '1');
    assert.equal(native.enteredStack(t), null, 'an ended call has no fork');
    assert.throws(() => native.exitForked(t, '1'), (/** @type {any} */ e) => e.code === 'invalid_state');
    // The slot is reused under a new generation: the old token still names nothing.
    const u = native.enterTool(stack, 'second', '{}', undefined, true);
    assert.notEqual(u, t);
    assert.throws(() => native.exitForked(t, '1'), (/** @type {any} */ e) => e.code === 'invalid_state');
    assert.notEqual(native.enteredStack(u), null, 'the running call is untouched');
    for (const bad of [0, -1, 0.5, NaN, 2 ** 60, u + 1]) {
      assert.equal(native.enteredStack(bad), null);
      assert.throws(() => native.exitForked(bad, '1'), (/** @type {any} */ e) => e.code === 'invalid_state');
    }
    native.exitForked(u, undefined, new Error('fails'));
    assert.equal(native.enteredStack(u), null);
    await baton.flush();
  } finally {
    baton.deregister('subscriber', 'tokens');
  }
});

test('withScope holds its fork under a token until the scope ends; tokens are not interchangeable', async () => {
  const before = native.enteredRunning();
  /** @type {any} */
  let inside = null;
  const v = await baton.withScope('held', async (scope) => {
    inside = native.enteredRunning();
    assert.equal(baton.currentScope()?.uuid, scope.uuid, 'the fork has the scope current');
    return 7;
  });
  assert.equal(v, 7);
  assert.equal(inside, before + 1);
  assert.throws(() => baton.withScope('throws', () => { throw new TypeError('x'); }), TypeError);
  assert.equal(baton.withScope('sync', () => 'ok'), 'ok');
  assert.equal(native.enteredRunning(), before, 'every scope ended and freed its slot');
  // A scope's token does not end a call, and the other way round; the slot stays.
  const stack = native.newStack();
  const [token] = native.enterScope(stack, 'direct', undefined);
  assert.throws(() => native.exitForked(token, '1'), (/** @type {any} */ e) => e.code === 'invalid_state');
  assert.notEqual(native.enteredStack(token), null);
  native.exitScope(token, undefined);
  assert.throws(() => native.exitScope(token, undefined), (/** @type {any} */ e) => e.code === 'invalid_state');
  assert.equal(native.enteredRunning(), before);
});
