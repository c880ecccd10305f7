// The browser / edge build (dist/web.mjs: ES module + explicit init()), loaded in Node from bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as web from '../dist/web.mjs';

test('web build: init() is required, then the same API works', async () => {
  assert.throws(() => web.push('early'), /init\(\)/);
  assert.equal(web.BatonError, undefined);
  await web.init(readFileSync(new URL('../dist/web/baton_wasm_bg.wasm', import.meta.url)));
  assert.equal(typeof web.BatonError, 'function');
  const seen = [];
  web.subscribe('s', (e) => seen.push(`${e.name}:${e.scope_category ?? e.kind}`));
  const run = web.push('run', { category: 'agent' });
  assert.equal(web.toolSync('t', 2, (x) => x * 21), 42);
  web.pop(run);
  assert.equal(await web.flush(), true);
  assert.deepEqual(seen, ['run:start', 't:start', 't:end', 'run:end']);
  assert.throws(() => web.pop(run), (e) => e instanceof web.BatonError && e.code === 'not_found');
});

test('web build: deliveries hop between microtasks (no process.nextTick): batched, bounded, before the next task', async () => {
  // init() ran in the test above (tests in a file run in order).
  /** @type {number[]} */
  const seenAt = [];
  let completed = 0;
  web.subscribe('hops', (e) => { if (e.scope_category === 'end') seenAt.push(completed); });
  // One call, then a chain of microtasks that emit nothing: delivered after a few idle hops,
  // while the chain still runs.
  web.toolSync('once', {}, () => null);
  let step = 0;
  while (seenAt.length === 0 && step < 50) {
    await null;
    step++;
  }
  assert.equal(seenAt.length, 1, 'delivered within the microtask chain');
  assert.ok(step >= 2 && step <= 10, `delivered after ${step} microtasks`);
  // An awaited loop: delivered in batches of more than one call while it runs.
  seenAt.length = 0;
  const n = 200;
  for (let i = 0; i < n; i++) {
    await web.tool('t', { i }, (a) => a);
    completed++;
  }
  assert.ok(seenAt.length > 0 && seenAt[0] >= 2, `first delivery after ${seenAt[0]} calls`);
  for (let k = 0; k < seenAt.length; k++) assert.ok(seenAt[k] - k <= 130, `call ${k} waited until call ${seenAt[k]}`);
  await new Promise((res) => setTimeout(res, 0));
  assert.equal(seenAt.length, n, 'everything delivered before the next task');
  web.deregister('subscriber', 'hops');
});
