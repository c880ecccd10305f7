// Delivery cases both packages must pass, written once: node/test/delivery.test.mjs runs them
// against the Node package, wasm/test/delivery.test.mjs against the wasm one, each before its
// own cases. The first needs a runtime with nothing registered: call these first in a process
// of their own.
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';

/** @typedef {import('../../index.mjs').AtofEvent} AtofEvent */

/**
 * Registers the shared delivery tests for one package.
 * @param {typeof import('../../index.mjs')} baton
 */
export function deliveryCases(baton) {
  test('nothing registered: a tool call is its callback, with the managed call semantics', async () => {
    const args = { q: 'paris', when: { day: 1 }, skip: undefined };
    /** @type {any} */
    let seen = null;
    const out = baton.toolSync('weather', args, (/** @type {any} */ a) => {
      seen = a;
      a.when.day = 2; // a copy: the caller's object is not touched
      return { temp: 21, date: new Date(0) };
    });
    assert.deepEqual(seen, { q: 'paris', when: { day: 2 } }, 'undefined fields dropped, as on the managed path');
    assert.equal(args.when.day, 1);
    assert.deepEqual(out, { temp: 21, date: '1970-01-01T00:00:00.000Z' }, 'the result is its JSON form');
    // A value that is exactly its JSON form is handed on as it is (docs/node.md and docs/wasm.md, "Values").
    const sent = { n: 1, list: [1, 'two', null] };
    assert.equal(await baton.tool('t', sent, async (a) => a), sent);
    assert.equal(baton.toolSync('t', sent, (a) => a), sent);
    /** @type {any} */
    const notJson = { f: () => 1 };
    assert.throws(() => baton.toolSync('t', notJson, (a) => a), { code: 'invalid_argument', message: /args\.f: a function is not JSON/ });
    /** @type {any} */
    const cyclic = { a: [1] };
    cyclic.a.push(cyclic);
    assert.throws(() => baton.toolSync('t', cyclic, (a) => a), { code: 'invalid_argument', message: /args\.a\[1\]: a cycle/ });
    assert.throws(() => baton.toolSync('t', {}, () => /** @type {any} */ ({ big: 1n })), { code: 'invalid_argument', message: /returned value\.big/ });
    assert.throws(() => baton.toolSync('t', {}, /** @type {any} */ (async () => 1)), { code: 'invalid_state', message: /returned a Promise/ });
    assert.throws(() => baton.toolSync('', {}, (a) => a), { code: 'invalid_argument' });
    const boom = new RangeError('boom');
    assert.throws(() => baton.toolSync('t', {}, () => { throw boom; }), (e) => e === boom);
    await assert.rejects(baton.tool('t', {}, async () => { throw boom; }), (e) => e === boom);
    // The callback runs under the caller's scope (no scope of its own); the async one on a fork
    // of the caller's stack, so what it opens is still parented under the caller's scope.
    const outer = baton.push('outer');
    assert.equal(baton.toolSync('t', {}, () => baton.currentScope()?.name ?? null), 'outer');
    const inner = await baton.tool('t', {}, async () => {
      const s = baton.push('inner');
      baton.pop(s);
      return s.parentUuid;
    });
    assert.equal(inner, outer.uuid);
    baton.pop(outer);
  });

  test("format 'json' hands each event's text; objects are parsed once and shared", async () => {
    /** @type {string[]} */
    const texts = [];
    /** @type {AtofEvent[]} */
    const a = [];
    /** @type {AtofEvent[]} */
    const b = [];
    baton.subscribe('text', (t) => { texts.push(t); }, { format: 'json' });
    baton.subscribe('a', (e) => { a.push(e); });
    baton.subscribe('b', (e) => { b.push(e); });
    // Non-ASCII text (2-byte, 3-byte and astral characters) must not shift the event bounds.
    const args = { city: 'Zürich → 東京 🚀', n: 3 };
    baton.toolSync('weather', args, () => ({ ok: '✓' }));
    baton.mark('after', { data: { note: 'ünïcödé' } });
    assert.ok(await baton.flush());
    assert.equal(texts.length, 3);
    assert.ok(texts.every((t) => typeof t === 'string'));
    assert.deepEqual(texts.map((t) => JSON.parse(t)), a, 'the text is the event the object subscriber got');
    assert.deepEqual(a[0].data, args);
    assert.deepEqual(a[1].data, { ok: '✓' });
    assert.deepEqual(a[2].data, { note: 'ünïcödé' });
    a.forEach((e, i) => assert.equal(e, b[i], 'one object per event, shared'));
    assert.throws(() => baton.subscribe('bad', () => {}, /** @type {any} */ ({ format: 'xml' })), {
      code: 'invalid_argument',
      message: /options\.format: expected 'object' or 'json', got "xml"/,
    });
    for (const n of ['text', 'a', 'b']) baton.deregister('subscriber', n);
  });

  test('event objects are built from the layout: the same object and key order as parsing the text', async () => {
    /** @type {string[]} */
    const texts = [];
    /** @type {AtofEvent[]} */
    const objects = [];
    baton.subscribe('text', (t) => { texts.push(t); }, { format: 'json' });
    baton.subscribe('objects', (e) => { objects.push(e); });
    // Every form a value can take: escaped and plain strings, a parent, attributes, a
    // category profile, user metadata, an error status, marks with and without a category.
    const agent = baton.push('agent "quoted"\n', { attributes: ['remote', 'parallel'], metadata: { team: 'x' } });
    baton.toolSync('search', { q: 'a' }, (a) => a, { toolCallId: 'call-1' });
    assert.throws(() => baton.toolSync('fails', {}, () => { throw new Error('no "luck"'); }));
    baton.mark('plain', { data: [1, 2.5, 'x'] });
    baton.mark('categorized', { category: 'custom', data: null });
    baton.mark('profiled', { categoryProfile: { k: [1] }, data: { x: 'y' } });
    baton.mark('both', { category: 'custom', categoryProfile: 'p', data: 2, dataSchema: { name: 's', version: '1' } });
    baton.mark('schema', { category: 'custom', data: { n: 1 }, dataSchema: { name: 's', version: '1' }, metadata: { m: true } });
    for (const _ of baton.llmStreamSync('chat', { content: 1 }, () => [{ d: 'a' }, 2])); // chunk marks
    baton.pop(agent, { output: { done: true } });
    assert.ok(await baton.flush());
    assert.equal(objects.length, texts.length);
    assert.ok(objects.length >= 15);
    assert.deepEqual(objects.filter((o) => o.name === 'llm.chunk').map((o) => o.metadata), [{ 'llm.chunk.index': 0 }, { 'llm.chunk.index': 1 }]);
    objects.forEach((o, i) => assert.equal(JSON.stringify(o), texts[i], `event ${i} (${o.kind} ${o.name})`));
    baton.deregister('subscriber', 'text');
    baton.deregister('subscriber', 'objects');
  });

  test('with only subscribers registered, exact values pass through and others are JSON copies', async () => {
    /** @type {AtofEvent[]} */
    const events = [];
    baton.subscribe('events', (e) => { events.push(e); });
    const args = { q: 'x', nested: { n: 1 } };
    /** @type {any} */
    let seen = null;
    const result = { found: [1, 2] };
    assert.equal(baton.toolSync('t', args, (a) => { seen = a; return result; }), result);
    assert.equal(seen, args);
    assert.equal(await baton.tool('t', args, async (a) => { seen = a; return result; }), result);
    assert.equal(seen, args);
    // Not exact (an undefined field, a Date): the function and the caller get the JSON form.
    const loose = { q: 'x', skip: undefined };
    const out = baton.toolSync('t', loose, (a) => { seen = a; return { at: new Date(0) }; });
    assert.notEqual(seen, loose);
    assert.deepEqual(seen, { q: 'x' });
    assert.deepEqual(out, { at: '1970-01-01T00:00:00.000Z' });
    // Changing a value after the call does not change the events already emitted.
    args.nested.n = 2;
    assert.ok(await baton.flush());
    const starts = events.filter((e) => e.kind === 'scope' && e.scope_category === 'start');
    assert.deepEqual(starts[0].data, { q: 'x', nested: { n: 1 } });
    assert.deepEqual(events.at(-1)?.data, { at: '1970-01-01T00:00:00.000Z' });
    baton.deregister('subscriber', 'events');
  });

  test('only subscribers: an LLM stream pulled by the facade emits what the managed stream emits', async () => {
    /** @type {AtofEvent[]} */
    const events = [];
    baton.subscribe('all', (e) => { events.push(e); });
    const chunks = [{ delta: 'a' }, null, [1, 'b']];
    const run = async () => {
      events.length = 0;
      /** @type {any} */
      let seenRequest = null;
      const s = await baton.llmStream('chat', { content: { m: 1 } }, async function* (req) {
        seenRequest = req;
        baton.mark('inside', { data: 1 }); // parented under the call
        for (const c of chunks) yield c;
      }, { modelName: 'm1' });
      /** @type {unknown[]} */
      const got = [];
      for await (const c of s) got.push(c);
      assert.deepEqual(got, chunks);
      assert.deepEqual(seenRequest, { content: { m: 1 }, headers: {} }, 'the callback sees the checked request');
      // Sync form, a failing source and an early stop.
      assert.deepEqual([...baton.llmStreamSync('chat', { headers: {}, content: 2 }, () => chunks)], chunks);
      const boom = new RangeError('source failed');
      const failing = await baton.llmStream('chat', { content: 3 }, async function* () { yield 1; throw boom; });
      await assert.rejects(async () => { for await (const _ of failing); }, (e) => e === boom);
      const early = await baton.llmStream('chat', { content: 4 }, () => chunks);
      for await (const _ of early) break;
      assert.ok(await baton.flush());
      const byUuid = new Map(events.map((e) => [e.uuid, e.name]));
      return events.map((e) => ({
        kind: e.kind, sc: e.scope_category, name: e.name, data: e.data, category: e.category,
        parent: e.parent_uuid === null ? null : byUuid.get(e.parent_uuid) ?? 'outside',
        metadata: e.metadata, profile: e.category_profile,
      }));
    };
    const entered = await run();
    // The same streams through the core's stream machinery: a stream intercept that passes the
    // chunks on makes the core pull them itself.
    baton.register('llm_stream_execution_intercept', 'same', (chunks) => chunks);
    const managed = await run();
    baton.deregister('llm_stream_execution_intercept', 'same');
    assert.deepEqual(entered, managed);
    assert.equal(entered.filter((e) => e.name === 'llm.chunk').length, 3 + 3 + 1 + 1);
    assert.deepEqual(entered[1], { kind: 'mark', sc: undefined, name: 'inside', data: 1, category: undefined, parent: 'chat', metadata: {}, profile: undefined });
    const ends = entered.filter((e) => e.sc === 'end');
    assert.deepEqual(ends[0].data, chunks);
    assert.equal(ends[2].metadata['exception.type'], 'RangeError');
    assert.equal(ends[3].metadata['error.type'], 'cancelled');
    baton.deregister('subscriber', 'all');
  });

  test('calls notice subscribers that come and go (the facade caches only "observed")', async () => {
    /** @type {string[]} */
    const a = [];
    /** @type {string[]} */
    const b = [];
    baton.subscribe('come-a', (e) => { a.push(e.name); });
    baton.toolSync('seen-by-a', {}, (x) => x);
    await baton.tool('seen-by-a-async', {}, async (x) => x);
    await baton.flush();
    baton.deregister('subscriber', 'come-a');
    baton.toolSync('seen-by-none', {}, (x) => x);
    await baton.tool('seen-by-none-async', {}, async (x) => x);
    baton.subscribe('come-b', (e) => { b.push(e.name); });
    try {
      baton.toolSync('seen-by-b', {}, (x) => x);
      await baton.tool('seen-by-b-async', {}, async (x) => x);
      await baton.flush();
    } finally {
      baton.deregister('subscriber', 'come-b');
    }
    assert.deepEqual(a, ['seen-by-a', 'seen-by-a', 'seen-by-a-async', 'seen-by-a-async']);
    assert.deepEqual(b, ['seen-by-b', 'seen-by-b', 'seen-by-b-async', 'seen-by-b-async']);
  });

  test('an entered llm call: the request its function gets, credentials, errors, nesting', async () => {
    /** @type {any[]} */
    const events = [];
    baton.subscribe('llm-events', (e) => { events.push(e); });
    try {
      /** @type {any[]} */
      const got = [];
      const withHeaders = { headers: { Authorization: 'Bearer secret', 'x-a': '1' }, content: { q: 1 } };
      const r1 = await baton.llm('chat', withHeaders, async (req) => {
        got.push(req);
        baton.mark('inside-llm');
        return { text: 'a' };
      }, { modelName: 'm1' });
      assert.deepEqual(r1, { text: 'a' });
      assert.equal(got[0], withHeaders, 'the caller\'s own request when it is exactly its JSON form');
      const r2 = baton.llmSync('chat', { content: 'hi' }, (req) => { got.push(req); return 'ok'; });
      assert.equal(r2, 'ok');
      assert.deepEqual(got[1], { headers: {}, content: 'hi' }, 'headers added, as the managed path does');
      const boom = new RangeError('provider down');
      await assert.rejects(baton.llm('chat', { content: 1 }, async () => { throw boom; }), (e) => e === boom);
      assert.throws(() => baton.llmSync('chat', /** @type {any} */ ({ headers: 1, content: 1 }), () => 1), (/** @type {any} */ e) => e.code === 'invalid_argument');
      await baton.flush();
      const starts = events.filter((e) => e.name === 'chat' && e.scope_category === 'start');
      const ends = events.filter((e) => e.name === 'chat' && e.scope_category === 'end');
      assert.equal(starts.length, 3);
      assert.equal(ends.length, 3);
      assert.deepEqual(starts[0].data, { headers: { 'x-a': '1' }, content: { q: 1 } }, 'credentials stripped from the event');
      assert.equal(starts[0].category_profile.model_name, 'm1');
      assert.deepEqual(ends[0].data, { text: 'a' });
      assert.deepEqual(starts[1].data, { headers: {}, content: 'hi' });
      assert.equal(ends[2].metadata['otel.status_code'], 'ERROR');
      assert.equal(events.find((e) => e.name === 'inside-llm').parent_uuid, starts[0].uuid);
    } finally {
      baton.deregister('subscriber', 'llm-events');
    }
  });
}
