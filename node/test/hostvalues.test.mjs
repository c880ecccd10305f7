// Host values (docs/node.md, "Host values"): while every consumer of an event is a JS subscriber
// that takes objects, an entered call's arguments and result travel as snapshots the facade
// keeps, not as JSON text. These tests check that subscribers see exactly what JSON would have
// given them, that every consumer that needs JSON gets it (the core asks for the text), and that
// the table of snapshots empties.
// Run: node --test test/
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as baton from '../index.mjs';

const load = createRequire(import.meta.url);
/** The facade's own table (the same module instance: same file). */
const hostValues = load('../lib/hostvalues.js');
/** The addon's hint the facade reads before offering a snapshot. */
const welcome = new Uint32Array(load('../baton.node').hostWelcome());

/** @param {string} name */
function objects(name) {
  /** @type {any[]} */
  const seen = [];
  baton.subscribe(name, (e) => { seen.push(e); });
  return seen;
}

test('subscribers get the values as the call saw them, as JSON would give them', async () => {
  const seen = objects('hv-objects');
  try {
    assert.equal(welcome[0], 1, 'only an object subscriber: host values are welcome');
    const args = { query: 'q', n: -0, list: [1, 'two', { three: null }], nested: { deep: true } };
    const result = { got: 1 };
    baton.toolSync('sync', args, () => result);
    // What the call saw is what the events say, whatever happens to the objects after.
    args.query = 'changed';
    args.list.push(4);
    result.got = 2;
    const r = await baton.tool('async', { when: new Date(0), skip: undefined }, async (a) => ({ a }));
    assert.deepEqual(r, { a: { when: '1970-01-01T00:00:00.000Z' } });
    await baton.flush();
    const data = seen.map((e) => e.data);
    assert.deepEqual(data, [
      { query: 'q', n: 0, list: [1, 'two', { three: null }], nested: { deep: true } },
      { got: 1 },
      { when: '1970-01-01T00:00:00.000Z' },
      { a: { when: '1970-01-01T00:00:00.000Z' } },
    ]);
    assert.ok(Object.is(data[0].n, 0), '-0 arrives as JSON gives it: 0');
    assert.notEqual(data[0], args, 'a copy, not the caller\'s object');
    assert.equal(hostValues.held(), 0, 'every snapshot was taken by its delivery');
  } finally {
    baton.deregister('subscriber', 'hv-objects');
  }
});

test('a subscriber that reads JSON gets the text, and object subscribers the same values', async () => {
  const seen = objects('hv-objects');
  /** @type {string[]} */
  const texts = [];
  try {
    baton.subscribe('hv-text', (t) => { texts.push(t); }, { format: 'json' });
    assert.equal(welcome[0], 0, 'a JSON subscriber: no host values');
    baton.toolSync('sync', { a: [1, 2] }, (a) => a);
    await baton.tool('async', { b: 'x' }, async () => 'y');
    await baton.flush();
    assert.deepEqual(seen.map((e) => e.data), [{ a: [1, 2] }, { a: [1, 2] }, { b: 'x' }, 'y']);
    assert.deepEqual(texts.map((t) => JSON.parse(t)), seen.map((e) => JSON.parse(JSON.stringify(e))));
  } finally {
    baton.deregister('subscriber', 'hv-text');
    baton.deregister('subscriber', 'hv-objects');
  }
});

test('a snapshot offered while a JSON subscriber arrives is turned into text by the core', async () => {
  const seen = objects('hv-objects');
  /** @type {string[]} */
  const texts = [];
  try {
    // The facade offers a snapshot (the hint says welcome), then, inside the call, a JSON
    // subscriber registers: the end event must reach it as text.
    assert.equal(welcome[0], 1);
    baton.toolSync('late', { a: 1 }, () => {
      baton.subscribe('hv-late-text', (t) => { texts.push(t); }, { format: 'json' });
      return { b: 2 };
    });
    await baton.flush();
    assert.deepEqual(seen.map((e) => e.data), [{ a: 1 }, { b: 2 }]);
    assert.equal(texts.length, 1);
    assert.deepEqual(JSON.parse(texts[0]).data, { b: 2 });
    await baton.flush();
    assert.equal(hostValues.held(), 0, 'a snapshot whose event went out as text is dropped by the flush');
  } finally {
    baton.deregister('subscriber', 'hv-late-text');
    baton.deregister('subscriber', 'hv-objects');
  }
});

test('event middleware reads JSON: with it registered, it sees and changes the values', async () => {
  const seen = objects('hv-objects');
  try {
    baton.register('scope_sanitize_start', 'hv-redact', (f) => ({ data: { redacted: Object.keys(/** @type {object} */ (f.data)) }, metadata: f.metadata }));
    assert.equal(welcome[0], 0);
    await baton.tool('secret', { password: 'pw' }, async () => 'ok');
    await baton.flush();
    assert.deepEqual(seen.map((e) => e.data), [{ redacted: ['password'] }, 'ok']);
  } finally {
    baton.deregister('scope_sanitize_start', 'hv-redact');
    baton.deregister('subscriber', 'hv-objects');
  }
});

test('the table stays bounded when its subscriber goes away mid-loop', async () => {
  let events = 0;
  baton.subscribe('hv-count', () => { events++; });
  for (let i = 0; i < 20000; i++) {
    if (i === 10000) baton.deregister('subscriber', 'hv-count');
    baton.toolSync('loop', { i }, (a) => a);
  }
  assert.ok(hostValues.held() <= 2 * 10000, `held ${hostValues.held()}`);
  await baton.flush();
  assert.equal(events, 20000);
  assert.equal(hostValues.held(), 0);
});

test('calls from a worker thread reach the first thread\'s subscribers with their values (as text)', async () => {
  const { Worker } = await import('node:worker_threads');
  const seen = objects('hv-objects');
  try {
    const url = new URL('../index.js', import.meta.url).pathname;
    const worker = new Worker(
      `const b = require(${JSON.stringify(url)});
       const { parentPort } = require('node:worker_threads');
       const w = new Uint32Array(require(${JSON.stringify(new URL('../baton.node', import.meta.url).pathname)}).hostWelcome());
       b.toolSync('from-worker', { n: 1 }, (a) => ({ m: a.n + 1 }));
       parentPort.postMessage(w[0]);`,
      { eval: true },
    );
    const workerWelcome = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    await worker.terminate();
    assert.equal(workerWelcome, 0, 'a worker never offers host values');
    baton.toolSync('from-main', { k: 'v' }, (a) => a);
    await baton.flush();
    const byName = Object.fromEntries(seen.filter((e) => e.scope_category === 'end').map((e) => [e.name, e.data]));
    assert.deepEqual(byName, { 'from-worker': { m: 2 }, 'from-main': { k: 'v' } });
    assert.equal(hostValues.held(), 0);
  } finally {
    baton.deregister('subscriber', 'hv-objects');
  }
});
