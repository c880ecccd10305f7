// Memory of loops that never let the event loop turn. Two things used to wait for a turn and
// pile up meanwhile: the native part of every scope, stack and call handle (N-API ran their
// finalizers from a later turn; the addon now declares the experimental Node-API version, under
// which Node runs them inside the garbage collector), and the delivery batch of calls that did
// not check its size. These tests fail on the addon and facade before that change: the
// synchronous loops below grew the RSS by 180-470 MiB over 200,000 iterations (0.9-2.4 KB each).
// Run: node --test test/
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as baton from '../index.mjs';
import { assertNoGrowthPerWindow } from './cases/rss.mjs';

setFlagsFromString('--expose-gc');
/** @type {() => void} */
const gc = runInNewContext('gc');

/** Iterations per window (cases/rss.mjs: one warm-up window, then WINDOWS measured). */
const N = 100000;
const WINDOWS = 4;
const LIMIT_MIB = 40;

/** @type {Record<string, () => void | Promise<void>>} */
const loops = {
  'push and pop': () => {
    for (let i = 0; i < N; i++) baton.pop(baton.push('step'));
  },
  'toolStart and end': () => {
    for (let i = 0; i < N; i++) baton.toolStart('manual', { i }).end({ result: i });
  },
  'toolSync whose function throws': () => {
    for (let i = 0; i < N; i++) {
      try {
        baton.toolSync('failing', { i }, () => { throw new Error('no'); });
      } catch {
        // expected
      }
    }
  },
  'synchronous withScope': () => {
    for (let i = 0; i < N; i++) baton.withScope('step', () => i);
  },
  'awaited withScope (microtasks only)': async () => {
    for (let i = 0; i < N; i++) await baton.withScope('step', async () => i);
  },
};

for (const [what, loop] of Object.entries(loops)) {
  test(`a loop that never yields keeps memory bounded: ${what}`, async () => {
    let events = 0;
    baton.subscribe('count-memory', () => { events++; });
    try {
      await assertNoGrowthPerWindow(loop, { windows: WINDOWS, limitMiB: LIMIT_MIB, gc, what: `${what}, ${N} per window` });
      await baton.flush();
      assert.equal(events, 2 * N * (WINDOWS + 1), 'every start and end event was delivered');
    } finally {
      baton.deregister('subscriber', 'count-memory');
    }
  });
}

test('a loop of calls through a JS execution intercept keeps memory bounded', async () => {
  // Each call hands the intercept a context and a `next` handle: memory only, dropped inside
  // the collector (posting their drops as well kept ~0.9 KiB per call until the loop ended).
  let events = 0;
  baton.subscribe('count-intercepted', () => { events++; });
  baton.register('tool_execution_intercept', 'around', (args, next) => next(args), { sync: true });
  try {
    await assertNoGrowthPerWindow(() => {
      for (let i = 0; i < N; i++) baton.toolSync('wrapped', { i }, (a) => a);
    }, { windows: WINDOWS, limitMiB: LIMIT_MIB, gc, what: `calls through an intercept, ${N} per window` });
    await baton.flush();
    assert.equal(events, 2 * N * (WINDOWS + 1));
  } finally {
    baton.deregister('tool_execution_intercept', 'around');
    baton.deregister('subscriber', 'count-intercepted');
  }
});

test('a stream dropped unfinished is ended after the collection, where JS may run', async () => {
  // A JS stream intercept puts the calls on the managed path, whose stream handle, when
  // collected, ends the call (a cancelled end event) and calls the source's `return()`: JS,
  // which must not run inside the garbage collector. So these drops are posted to run after it.
  /** @type {any[]} */
  const ends = [];
  let closed = 0;
  baton.subscribe('stream-ends', (e) => {
    if (e.kind === 'scope' && e.scope_category === 'end' && e.name === 'dropped') ends.push(e);
  });
  baton.register('llm_stream_execution_intercept', 'pass', (chunks) => chunks);
  try {
    const M = 200;
    (() => {
      for (let i = 0; i < M; i++) {
        const s = baton.llmStreamSync('dropped', { content: { i } }, function* source() {
          try {
            yield 'a';
            yield 'b';
          } finally {
            closed++;
          }
        });
        assert.equal(s.next().value, 'a');
      }
    })();
    for (let k = 0; k < 3; k++) gc();
    // Nothing ran inside the collections; a few turns of the event loop run the posted drops.
    for (let k = 0; k < 20 && closed < M; k++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    assert.equal(closed, M, 'each source was closed through return()');
    await baton.flush();
    assert.equal(ends.length, M);
    for (const e of ends) assert.equal(e.metadata['error.type'], 'cancelled');
  } finally {
    baton.deregister('llm_stream_execution_intercept', 'pass');
    baton.deregister('subscriber', 'stream-ends');
  }
});
