// Delivery to JS subscribers (batched text, format 'json', objects shared), the
// nothing-registered shortcut and tool calls run by the facade when only subscribers see them.
// Its own process: the first test needs a runtime with nothing registered.
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../dist/index.mjs';
import { deliveryCases } from '../../node/test/cases/delivery.mjs';

deliveryCases(baton);

test('only subscribers: the facade runs the function between enterTool and exitTool, with the managed events', async () => {
  /** @type {any[]} */
  const events = [];
  baton.subscribe('all', (e) => { events.push(e); });
  const run = async () => {
    events.length = 0;
    const r = baton.toolSync('lookup', { q: 1 }, (a) => {
      // Nested work is parented under the call's scope.
      baton.mark('inside', { data: a });
      return { found: [a.q] };
    }, { toolCallId: 'c1', metadata: { k: 'v' } });
    assert.deepEqual(r, { found: [1] });
    const boom = new TypeError('no such key');
    assert.throws(() => baton.toolSync('lookup', { q: 2 }, () => { throw boom; }), (e) => e === boom);
    const ra = await baton.tool('alookup', { q: 3 }, async (a) => {
      await new Promise((res) => setTimeout(res, 1));
      const inner = baton.toolSync('inner', { x: a.q }, (x) => x);
      return { inner };
    });
    assert.deepEqual(ra, { inner: { x: 3 } });
    await assert.rejects(baton.tool('alookup', {}, async () => { throw boom; }), (e) => e === boom);
    assert.ok(await baton.flush());
    // Only what does not vary between runs.
    const byUuid = new Map(events.map((e) => [e.uuid, e.name]));
    return events.map((e) => ({
      kind: e.kind, sc: e.scope_category, name: e.name, category: e.category, data: e.data,
      parent: e.parent_uuid === null ? null : byUuid.get(e.parent_uuid) ?? 'outside',
      metadata: e.metadata, attributes: e.attributes, profile: e.category_profile,
    }));
  };
  const entered = await run();
  // The same calls through the managed path: a request intercept that changes nothing makes
  // the core run them itself.
  baton.register('tool_request_intercept', 'same', () => undefined);
  const managed = await run();
  baton.deregister('tool_request_intercept', 'same');
  assert.deepEqual(entered, managed);
  assert.equal(entered.length, 11);
  assert.deepEqual(entered[1], { kind: 'mark', sc: undefined, name: 'inside', category: undefined, data: { q: 1 }, parent: 'lookup', metadata: {}, attributes: undefined, profile: undefined });
  assert.equal(entered[4].metadata['otel.status_code'], 'ERROR');
  assert.equal(entered[4].metadata['exception.type'], 'TypeError');
  assert.equal(entered[6].parent, 'alookup', 'nested call of an async call');
  baton.deregister('subscriber', 'all');
});

test('subscriber failures are counted; a subscriber that is removed gets nothing more', async () => {
  const before = baton.diagnostics().subscriberFailures;
  let calls = 0;
  baton.subscribe('throws', () => { calls++; throw new Error('x'); });
  baton.subscribe('rejects', async () => { throw new Error('y'); });
  baton.mark('m1');
  assert.ok(await baton.flush());
  await new Promise((res) => setTimeout(res, 0));
  assert.equal(baton.diagnostics().subscriberFailures, before + 2);
  baton.mark('m2');
  baton.deregister('subscriber', 'throws');
  baton.deregister('subscriber', 'rejects');
  baton.mark('m3');
  assert.ok(await baton.flush());
  assert.equal(calls, 2, 'm2 was emitted before the removal, m3 after it');
});

test('events reach subscribers on a microtask without flush, in emission order', async () => {
  /** @type {string[]} */
  const names = [];
  baton.subscribe('order', (e) => { names.push(e.name); });
  for (let i = 0; i < 5; i++) baton.toolSync(`t${i}`, {}, () => null);
  assert.equal(names.length, 0, 'nothing is delivered inside the caller');
  await Promise.resolve();
  await new Promise((res) => setTimeout(res, 0));
  assert.deepEqual(names, ['t0', 't0', 't1', 't1', 't2', 't2', 't3', 't3', 't4', 't4']);
  baton.deregister('subscriber', 'order');
});

test('an awaited loop of calls is delivered in batches, on microtasks, before the next task', async () => {
  let completed = 0;
  /** @type {number[]} */
  const seenAt = [];
  baton.subscribe('batches', (e) => { if (e.scope_category === 'end') seenAt.push(completed); });
  const n = 200;
  for (let i = 0; i < n; i++) {
    await baton.tool('t', { i }, (a) => a);
    completed++;
  }
  // Each call's events wait while the loop keeps calling (this build: until no microtask is
  // pending; the web build: a few hops): the first drain comes after more than one call, and
  // none waits past the facade's count of undelivered calls (128: the loop of 200 is
  // delivered at least once while it runs).
  assert.ok(seenAt.length > 0, 'delivered while the loop ran, without flush or a task');
  assert.ok(seenAt[0] >= 2, `the first call's events were delivered alone (after ${seenAt[0]} calls)`);
  for (let k = 0; k < seenAt.length; k++) assert.ok(seenAt[k] - k <= 130, `call ${k} waited until call ${seenAt[k]}`);
  assert.ok(seenAt.filter((c) => c < n).length > 0, 'some calls were delivered before the loop ended');
  await new Promise((res) => setTimeout(res, 0));
  assert.equal(seenAt.length, n, 'everything delivered before the next task');
  baton.deregister('subscriber', 'batches');
});

test('on Node the drain waits until no microtask is pending (process.nextTick), and still comes before the next task', async () => {
  /** @type {string[]} */
  const names = [];
  baton.subscribe('tick', (e) => { if (e.scope_category === 'end') names.push(e.name); });
  baton.toolSync('once', {}, () => null);
  // A chain of microtasks that emit nothing: the browser build's hops would deliver after
  // four of them; here the tick runs only once the chain has ended.
  let step = 0;
  for (; step < 20; step++) {
    await null;
    assert.equal(names.length, 0, `delivered during the microtask chain, at step ${step}`);
  }
  let delivered = false;
  process.nextTick(() => { delivered = names.length === 1; });
  await new Promise((res) => setTimeout(res, 0));
  assert.ok(delivered, 'delivered by the first tick once the microtask queue was empty');
  assert.deepEqual(names, ['once']);
  baton.deregister('subscriber', 'tick');
});

test("an async stream's chunks are delivered in batches too, before the next task", async () => {
  let consumed = 0;
  /** @type {number[]} */
  const seenAt = [];
  baton.subscribe('chunks', (e) => { if (e.name === 'llm.chunk') seenAt.push(consumed); });
  const n = 50;
  const s = await baton.llmStream('chat', { content: 'hi' }, async function* () {
    for (let i = 0; i < n; i++) yield { delta: i };
  });
  for await (const _c of s) consumed++;
  // Chunks are a few microtasks apart (pull, generator, `for await`): the drain waits for
  // several idle hops in a row, so the first chunk is not delivered on its own (here the
  // stream is shorter than a batch: its chunks come together once it ends).
  await new Promise((res) => setTimeout(res, 0));
  assert.equal(seenAt.length, n, 'every chunk delivered before the next task');
  assert.ok(seenAt[0] >= 2, `the first chunk was delivered after ${seenAt[0]} chunks`);
  baton.deregister('subscriber', 'chunks');
});

test("the module's event text is the core's ATOF line, and built objects equal parsed ones", async () => {
  /** @type {string[]} */
  const lines = [];
  /** @type {string[]} */
  const texts = [];
  /** @type {any[]} */
  const objects = [];
  baton.plugins.registerSink('lines', { atof: (line) => { lines.push(line); } });
  baton.plugins.initialize({ version: 1, components: [{ kind: 'observability', config: { atof: { enabled: true, sinks: [{ type: 'callback', sink: 'lines' }] } } }] });
  baton.subscribe('text', (t) => { texts.push(t); }, { format: 'json' });
  baton.subscribe('obj', (e) => { objects.push(e); });
  try {
    // Common shapes (built from slices) and the rest (parsed): escapes, non-ASCII names and
    // data, profiles, attributes, metadata, error status, marks with and without categories.
    const outer = baton.push('agent "quoted" \\ name', { category: 'agent', attributes: ['parallel'], metadata: { a: 1 } });
    baton.toolSync('plain', { s: 'é→🚀', n: -1.5e-7, nested: [null, true, { x: '' }] }, (a) => a);
    baton.toolSync('naïve 名前', 'just text', () => null);
    baton.toolSync('with id', {}, () => 1, { toolCallId: 'id-1' });
    assert.throws(() => baton.toolSync('fails', {}, () => { throw new Error('bad\nline'); }));
    baton.mark('m');
    baton.mark('m2', { data: [1, 2], category: 'note', metadata: { k: 'v' } });
    const s = baton.push('custom', { category: 'retrieval', input: { q: 'x' }, dataSchema: { name: 's', version: '1' } });
    baton.pop(s, { output: 'done' });
    baton.pop(outer);
    assert.ok(await baton.flush());
    assert.equal(texts.length, 14);
    assert.deepEqual(texts, lines, 'the same bytes as the ATOF exporter');
    assert.deepEqual(objects, lines.map((l) => JSON.parse(l)));
    assert.deepEqual(objects.map((o) => JSON.stringify(o)), lines, 'same keys in the same order');
  } finally {
    baton.deregister('subscriber', 'text');
    baton.deregister('subscriber', 'obj');
    baton.plugins.clear();
    baton.plugins.deregisterSink('lines');
  }
});

test('a loop that never yields is delivered in small batches, not after the whole queue', async () => {
  let seen = 0;
  baton.subscribe('count', () => { seen++; });
  let maxLag = 0;
  const calls = 3000;
  for (let i = 0; i < calls; i++) {
    baton.toolSync('step', { i }, (a) => a);
    maxLag = Math.max(maxLag, 2 * (i + 1) - seen);
  }
  assert.ok(seen > 0, 'events were delivered while the loop ran');
  // The facade drains inline past 256 waiting events; one call emits two.
  assert.ok(maxLag <= 258, `at most the high-water mark waits (saw ${maxLag})`);
  assert.ok(await baton.flush());
  assert.equal(seen, 2 * calls);
  baton.deregister('subscriber', 'count');
});

test('every kind of call that emits is delivered during a loop that never yields', async () => {
  // Not only the calls whose events the module counts: the facade also counts module calls
  // since the last drain (push/pop, marks, withScope, manual handles, failing calls used to
  // batch every event until the loop ended: 0.6-2.4 KB of module memory per iteration).
  /** @type {Record<string, [number, () => void]>} */
  const kinds = {
    'push/pop': [2, () => baton.pop(baton.push('p'))],
    mark: [1, () => baton.mark('m')],
    withScope: [2, () => baton.withScope('w', () => 1)],
    'toolStart/end': [2, () => baton.toolStart('t', { a: 1 }).end({ result: 1 })],
    'failing toolSync': [2, () => {
      try {
        baton.toolSync('f', {}, () => { throw new Error('no'); });
      } catch {
        // expected
      }
    }],
  };
  let seen = 0;
  baton.subscribe('count-kinds', () => { seen++; });
  try {
    for (const [what, [events, once]] of Object.entries(kinds)) {
      assert.ok(await baton.flush());
      seen = 0;
      let maxLag = 0;
      const n = 3000;
      for (let i = 0; i < n; i++) {
        once();
        maxLag = Math.max(maxLag, events * (i + 1) - seen);
      }
      // At most 128 calls wait, two events each.
      assert.ok(maxLag <= 2 * 129, `${what}: at most the high-water mark waits (saw ${maxLag})`);
      assert.ok(await baton.flush());
      assert.equal(seen, events * n, what);
    }
  } finally {
    baton.deregister('subscriber', 'count-kinds');
  }
});

test('batches with non-ASCII text arrive intact, in both text and object form', async () => {
  /** @type {any[]} */
  const objects = [];
  /** @type {string[]} */
  const texts = [];
  baton.subscribe('objects', (e) => { objects.push(e); });
  baton.subscribe('texts', (e) => { texts.push(e); }, { format: 'json' });
  baton.toolSync('plain', { q: 'ascii' }, (a) => a);
  baton.toolSync('météo', { city: 'Zürich 🌤', quote: '"\\u00e9"' }, (a) => ({ ...a, n: '日本' }));
  baton.toolSync('after', { q: 'ascii again' }, (a) => a);
  assert.ok(await baton.flush());
  assert.deepEqual(objects.map((e) => e.name), ['plain', 'plain', 'météo', 'météo', 'after', 'after']);
  assert.deepEqual(objects[2].data, { city: 'Zürich 🌤', quote: '"\\u00e9"' });
  assert.deepEqual(objects[3].data, { city: 'Zürich 🌤', quote: '"\\u00e9"', n: '日本' });
  assert.deepEqual(objects[5].data, { q: 'ascii again' });
  assert.deepEqual(texts.map((t) => JSON.parse(t)), objects);
  baton.deregister('subscriber', 'objects');
  baton.deregister('subscriber', 'texts');
});

test('steady calls reuse the module memory: later passes of the same work do not grow it', async () => {
  // Payloads from a few bytes to a few KiB cover every size class of the module's allocator
  // (crates/wasm/src/heap.rs) and dlmalloc behind it. Freed blocks must be handed out again:
  // a pass allocates several MiB in all, so an allocator that did not reuse them would grow
  // the memory by that much per pass.
  let seen = 0;
  baton.subscribe('steady', () => { seen++; });
  try {
    const pass = async () => {
      for (let i = 0; i < 4000; i++) {
        const payload = { i, text: 'x'.repeat((i * 37) % 3000), list: Array.from({ length: i % 9 }, (_, k) => k) };
        await baton.tool('steady', payload, (a) => ({ ...a, done: true }));
        baton.toolSync('steady-sync', payload, (a) => a);
      }
      assert.ok(await baton.flush());
    };
    await pass();
    const { memoryBytes } = baton.diagnostics();
    assert.ok(Number.isInteger(memoryBytes) && memoryBytes > 0 && memoryBytes % 65536 === 0, `memoryBytes ${memoryBytes}`);
    await pass();
    await pass();
    const grown = baton.diagnostics().memoryBytes - memoryBytes;
    assert.ok(grown <= 1024 * 1024, `two more passes grew the module memory by ${grown} bytes`);
    assert.equal(seen, 3 * 4000 * 4);
  } finally {
    baton.deregister('subscriber', 'steady');
  }
});
