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
