// Binding concerns: scopes, isolation, conversion, errors, async bridging, streams,
// middleware of every family, subscribers and flush. Run: node --test test/
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as baton from '../index.mjs';
import { recorder as recordAll } from './cases/recorder.mjs';

/** @typedef {import('../index.mjs').AtofEvent} AtofEvent */

/** Records every event of a run (test/cases/recorder.mjs). */
const recorder = () => recordAll(baton);

/** @param {AtofEvent[]} events */
const names = (events) => events.map((e) => `${e.kind === 'mark' ? 'mark' : e.scope_category}:${e.name}`);

test('CommonJS and ESM share one module', () => {
  const load = createRequire(import.meta.url);
  const cjs = load('../index.js');
  assert.equal(cjs.tool, baton.tool);
  assert.equal(cjs.BatonError, baton.BatonError);
  assert.equal(baton.default.withScope, baton.withScope);
});

test('push/pop, marks, metrics and withScope emit a correct tree', async () => {
  const rec = recorder();
  const outer = baton.push('outer', { category: 'agent', metadata: { a: 1 }, attributes: ['stateful', 'parallel', 'stateful'] });
  baton.mark('m1', { data: { x: 1 } });
  baton.metric('latency', [{ value: 1.5, attributes: { op: 'x' } }], { unit: 'ms' });
  const v = baton.withScope('inner', (scope) => {
    assert.equal(scope.name, 'inner');
    assert.equal(scope.parentUuid, outer.uuid);
    return 42;
  });
  assert.equal(v, 42);
  baton.pop(outer, { output: { done: true }, metadata: { b: 2 } });
  const ev = await rec.done();
  assert.deepEqual(names(ev), ['start:outer', 'mark:m1', 'mark:latency', 'start:inner', 'end:inner', 'end:outer']);
  assert.deepEqual(ev[0].attributes, ['parallel', 'stateful']);
  assert.equal(ev[0].parent_uuid, null);
  assert.equal(ev[1].parent_uuid, outer.uuid);
  assert.deepEqual(ev[2].data, { measurements: [{ value: 1.5, attributes: { op: 'x' } }], unit: 'ms' });
  assert.deepEqual(ev[5].data, { done: true });
  assert.equal(ev[5].metadata.a, 1);
  assert.equal(ev[5].metadata.b, 2);
  assert.equal(ev[5].metadata['otel.status_code'], 'OK');
  assert.equal(outer.ended, true);
  assert.throws(() => baton.pop(outer), (e) => e instanceof baton.BatonError && e.code === 'not_found');
});

test('withScope ends with the error of a throwing or rejecting function', async () => {
  const rec = recorder();
  const boom = new Error('sync boom');
  assert.throws(() => baton.withScope('s1', () => { throw boom; }), (e) => e === boom);
  const later = new RangeError('async boom');
  await assert.rejects(baton.withScope('s2', async () => { await null; throw later; }), (e) => e === later);
  const ev = await rec.done();
  const ends = ev.filter((e) => e.scope_category === 'end');
  assert.equal(ends[0].metadata['otel.status_code'], 'ERROR');
  assert.equal(ends[0].metadata['otel.status_description'], 'sync boom');
  assert.equal(ends[1].metadata['otel.status_description'], 'async boom');
  assert.equal(ends[1].metadata['exception.type'], 'RangeError');
});

test('AsyncLocalStorage isolation: 100 concurrent tasks build 100 separate trees', async () => {
  const rec = recorder();
  const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));
  await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      baton.withScope(`task-${i}`, async () => {
        await sleep(i % 7);
        await baton.withScope(`step-${i}`, async () => {
          await sleep((i * 3) % 5);
          await baton.tool(`tool-${i}`, { i }, async (a) => { await sleep(i % 3); baton.mark(`inside-${i}`); return a; });
        });
        baton.mark(`after-${i}`);
      }, { category: 'agent' }),
    ),
  );
  const ev = await rec.done();
  assert.equal(ev.length, 100 * 8);
  /** @type {Map<string, AtofEvent>} */
  const starts = new Map(ev.filter((e) => e.scope_category === 'start').map((e) => [e.uuid, e]));
  const byName = (/** @type {string} */ n) => {
    const found = ev.find((e) => e.name === n && e.scope_category !== 'end');
    assert.ok(found, n);
    return found;
  };
  for (let i = 0; i < 100; i++) {
    const task = byName(`task-${i}`);
    const step = byName(`step-${i}`);
    const tool = byName(`tool-${i}`);
    assert.equal(task.parent_uuid, null);
    assert.equal(step.parent_uuid, task.uuid);
    assert.equal(tool.parent_uuid, step.uuid);
    assert.equal(byName(`inside-${i}`).parent_uuid, tool.uuid);
    assert.equal(byName(`after-${i}`).parent_uuid, task.uuid);
    assert.ok(starts.has(task.uuid));
  }
  // Every end is OK: nothing was unwound by another task.
  assert.ok(ev.filter((e) => e.scope_category === 'end').every((e) => e.metadata['otel.status_code'] === 'OK'));
});

test('payloads: undefined fields dropped, toJSON used, non-JSON rejected with a path', async () => {
  const got = await baton.tool('conv', { a: 1, b: undefined, when: new Date(0), nested: [{ x: 'y' }], n: 2.5 }, (a) => a);
  assert.deepEqual(got, { a: 1, when: '1970-01-01T00:00:00.000Z', nested: [{ x: 'y' }], n: 2.5 });
  /** @type {[unknown, string][]} */
  const bad = [
    [{ f() {} }, 'args.f: a function'],
    [{ s: Symbol('x') }, 'args.s: a symbol'],
    [{ big: 10n }, 'args.big: a BigInt'],
    [{ list: [1, new Map()] }, 'args.list[1]: a Map instance'],
    [{ 'odd key': NaN }, 'args["odd key"]: the number NaN'],
  ];
  for (const [value, prefix] of bad) {
    assert.throws(
      () => baton.toolSync('conv', /** @type {any} */ (value), (a) => a),
      (e) => e instanceof TypeError && e instanceof baton.BatonError && e.code === 'invalid_argument' && e.message.startsWith(prefix),
      prefix,
    );
  }
  /** @type {any} */
  const cyclic = { a: {} };
  cyclic.a.back = cyclic;
  assert.throws(() => baton.toolSync('conv', cyclic, (a) => a), (e) => e instanceof baton.BatonError && /args\.a\.back: a cycle/.test(e.message));
  // A callback returning non-JSON is an error of the call, not a crash.
  await assert.rejects(baton.tool('conv', {}, () => /** @type {any} */ (() => 1)), (e) => e instanceof baton.BatonError && e.code === 'invalid_argument');
});

test('errors: a callback throw reaches the caller unchanged; the event records it', async () => {
  const rec = recorder();
  class MyError extends Error {}
  const mine = new MyError('exact message');
  await assert.rejects(baton.tool('t-async', {}, async () => { await null; throw mine; }), (e) => e === mine);
  assert.throws(() => baton.toolSync('t-sync', {}, () => { throw mine; }), (e) => e === mine);
  // A thrown non-Error value too.
  await assert.rejects(baton.tool('t-str', {}, () => { throw 'plain string'; }), (e) => e === 'plain string');
  const ev = await rec.done();
  const end = ev.find((e) => e.name === 't-async' && e.scope_category === 'end');
  assert.equal(end?.metadata['otel.status_description'], 'exact message');
  assert.equal(end?.metadata['error.type'], 'callback_failed');
  assert.equal(end?.metadata['exception.type'], 'MyError');
});

test('guardrails, request and execution intercepts (sync and async functions) run in order', async () => {
  const rec = recorder();
  baton.register('tool_conditional_execution', 'g-allow', async (_args, info) => { await null; return info.name !== 'blocked'; });
  baton.register('tool_conditional_execution', 'g-reason', (_a, info) => (info.name === 'rm' ? { allow: false, reason: 'no rm' } : true), { priority: 1 });
  baton.register('tool_request_intercept', 'ri', async (args) => ({ .../** @type {object} */ (args), added: true }));
  /** @type {string[]} */
  const order = [];
  baton.register('tool_execution_intercept', 'outer', async (args, next, ctx) => {
    order.push(`outer:${ctx.info.name}`);
    ctx.queueMark('queued', { data: { by: 'outer' } });
    const r = await next(args);
    return { .../** @type {object} */ (r), outer: true };
  }, { priority: -1 });
  baton.register('tool_execution_intercept', 'retry', async (args, next) => {
    order.push('retry');
    try {
      return await next(args);
    } catch {
      return next(args);
    }
  });
  let attempts = 0;
  const out = await baton.tool('flaky', { x: 1 }, async (a) => {
    await null;
    attempts++;
    if (attempts === 1) throw new Error('first attempt fails');
    return a;
  });
  assert.deepEqual(out, { x: 1, added: true, outer: true });
  assert.equal(attempts, 2);
  assert.deepEqual(order, ['outer:flaky', 'retry']);
  await assert.rejects(baton.tool('rm', {}, () => 1), (e) => e instanceof baton.BatonError && e.code === 'guardrail_rejected' && /no rm/.test(e.message));
  await assert.rejects(baton.tool('blocked', {}, () => 1), (e) => e instanceof baton.BatonError && e.code === 'guardrail_rejected');
  for (const [k, n] of [['tool_conditional_execution', 'g-allow'], ['tool_conditional_execution', 'g-reason'], ['tool_request_intercept', 'ri'], ['tool_execution_intercept', 'outer'], ['tool_execution_intercept', 'retry']]) {
    assert.equal(baton.deregister(/** @type {any} */ (k), n), true);
  }
  assert.equal(baton.deregister('tool_execution_intercept', 'retry'), false);
  const ev = await rec.done();
  const flaky = ev.filter((e) => e.name === 'flaky');
  assert.deepEqual(flaky.map((e) => e.scope_category), ['start', 'end']);
  assert.deepEqual(flaky[0].data, { x: 1, added: true });
  const queued = ev.find((e) => e.name === 'queued');
  assert.equal(queued?.parent_uuid, flaky[0].uuid);
  assert.deepEqual(ev.find((e) => e.name === 'rm' && e.kind === 'mark')?.data, { rejected: true, rejection_reason: 'no rm' });
});

test('sync calls and sync intercepts; a Promise in a sync path is invalid_state, not a deadlock', async () => {
  baton.register('tool_execution_intercept', 'sync-x', (args, next) => ({ wrapped: next(args) }), { sync: true });
  assert.deepEqual(baton.toolSync('s', { a: 1 }, (a) => a), { wrapped: { a: 1 } });
  assert.deepEqual(await baton.tool('s', { a: 1 }, (a) => a), { wrapped: { a: 1 } });
  await assert.rejects(baton.tool('s', {}, async () => 1), (e) => e instanceof baton.BatonError && e.code === 'invalid_state');
  assert.throws(() => baton.toolSync('s', {}, /** @type {any} */ (async () => 1)), (e) => e instanceof baton.BatonError && e.code === 'invalid_state');
  baton.deregister('tool_execution_intercept', 'sync-x');
  baton.register('tool_execution_intercept', 'async-x', async (args, next) => next(args));
  assert.throws(() => baton.toolSync('s', {}, (a) => a), (e) => e instanceof baton.BatonError && e.code === 'invalid_state');
  baton.deregister('tool_execution_intercept', 'async-x');
});

test('sanitizers, event sanitizers and metadata injectors change only events', async () => {
  const rec = recorder();
  baton.register('tool_sanitize_request', 'san-req', (args) => ({ .../** @type {object} */ (args), secret: '***' }));
  baton.register('tool_sanitize_response', 'san-res', () => undefined);
  baton.register('event_metadata_injector', 'inj', (info) => ({ 'app.kind': info.kind }));
  baton.register('mark_sanitize', 'ms', (f) => ({ data: 'clean', metadata: f.metadata }));
  baton.register('scope_sanitize_start', 'sss', (f) => f);
  baton.register('scope_sanitize_end', 'sse', (f) => ({ data: f.data, metadata: { ...f.metadata, ended: true } }));
  const out = await baton.tool('san', { secret: 'pw' }, (a) => ({ got: a }));
  assert.deepEqual(out, { got: { secret: 'pw' } });
  baton.mark('dirty', { data: 'dirty' });
  for (const [k, n] of [['tool_sanitize_request', 'san-req'], ['tool_sanitize_response', 'san-res'], ['event_metadata_injector', 'inj'], ['mark_sanitize', 'ms'], ['scope_sanitize_start', 'sss'], ['scope_sanitize_end', 'sse']]) {
    baton.deregister(/** @type {any} */ (k), n);
  }
  const ev = await rec.done();
  assert.deepEqual(ev[0].data, { secret: '***' });
  assert.equal(ev[1].data, null);
  assert.equal(ev[1].metadata.ended, true);
  assert.equal(ev[0].metadata['app.kind'], 'scope');
  assert.equal(ev[2].data, 'clean');
  assert.equal(ev[2].metadata['app.kind'], 'mark');
});

test('scope-local middleware and subscribers live as long as their scope', async () => {
  const rec = recorder();
  /** @type {AtofEvent[]} */
  const local = [];
  const s = baton.push('owner');
  baton.subscribe('local-sub', (e) => { local.push(e); }, { scope: s });
  baton.register('tool_request_intercept', 'local-ri', () => ({ local: true }), { scope: s });
  assert.deepEqual(await baton.tool('inside', {}, (a) => a), { local: true });
  baton.pop(s);
  assert.deepEqual(await baton.tool('outside', {}, (a) => a), {});
  await rec.done();
  assert.deepEqual(names(local), ['start:inside', 'end:inside', 'end:owner']);
});

test('streams are async iterables pulled lazily; intercepts see chunks one by one', async () => {
  const rec = recorder();
  /** @type {string[]} */
  const log = [];
  baton.register('llm_stream_execution_intercept', 'upper', (chunks) => ({
    async *[Symbol.asyncIterator]() {
      for await (const c of chunks) {
        log.push(`intercept:${JSON.stringify(c)}`);
        yield { text: String(/** @type {any} */ (c).text).toUpperCase() };
      }
    },
  }));
  const stream = await baton.llmStream('chat', { headers: { authorization: 'Bearer x' }, content: { q: 1 } }, async function* () {
    for (const t of ['a', 'b', 'c']) {
      log.push(`produce:${t}`);
      await null;
      yield { text: t };
    }
  }, { modelName: 'm' });
  /** @type {unknown[]} */
  const got = [];
  for await (const c of stream) {
    log.push(`consume:${JSON.stringify(c)}`);
    got.push(c);
  }
  assert.deepEqual(got, [{ text: 'A' }, { text: 'B' }, { text: 'C' }]);
  assert.deepEqual(log.slice(0, 3), ['produce:a', 'intercept:{"text":"a"}', 'consume:{"text":"A"}']);
  baton.deregister('llm_stream_execution_intercept', 'upper');
  // Leaving early ends the stream as cancelled.
  const s2 = await baton.llmStream('chat2', { content: null }, () => [1, 2, 3]);
  for await (const c of s2) {
    assert.equal(c, 1);
    break;
  }
  const sync = baton.llmStreamSync('chat3', { content: null }, () => ['x', 'y']);
  assert.deepEqual([...sync], ['x', 'y']);
  const ev = await rec.done();
  const start = ev.find((e) => e.name === 'chat' && e.scope_category === 'start');
  assert.deepEqual(start?.data, { headers: {}, content: { q: 1 } });
  assert.deepEqual(start?.category_profile, { model_name: 'm' });
  assert.equal(ev.filter((e) => e.name === 'llm.chunk' && e.parent_uuid === start?.uuid).length, 3);
  const end2 = ev.find((e) => e.name === 'chat2' && e.scope_category === 'end');
  assert.equal(end2?.metadata['error.type'], 'cancelled');
});

test('manual lifecycle handles and standalone helpers', async () => {
  const rec = recorder();
  const h1 = baton.toolStart('manual', { a: 1 }, { toolCallId: 'c1' });
  const h2 = baton.llmStart('model', { content: 'hi' });
  baton.toolEnd(h1, { result: { ok: true } });
  baton.llmEnd(h2, { error: new Error('upstream down') });
  assert.throws(() => baton.toolEnd(h1), (e) => e instanceof baton.BatonError && e.code === 'not_found');
  baton.register('tool_conditional_execution', 'helper-g', (_a, info) => info.name !== 'no');
  baton.register('tool_request_intercept', 'helper-ri', (a) => ({ .../** @type {object} */ (a), seen: true }));
  await baton.toolConditionalExecution('yes', {});
  await assert.rejects(baton.toolConditionalExecution('no', {}), (e) => e instanceof baton.BatonError && e.code === 'guardrail_rejected');
  assert.throws(() => baton.toolConditionalExecutionSync('no', {}), (e) => e instanceof baton.BatonError && e.code === 'guardrail_rejected');
  assert.deepEqual(await baton.toolRequestIntercepts('x', { a: 1 }), { a: 1, seen: true });
  assert.deepEqual(baton.toolRequestInterceptsSync('x', {}), { seen: true });
  baton.deregister('tool_conditional_execution', 'helper-g');
  baton.deregister('tool_request_intercept', 'helper-ri');
  const ev = await rec.done();
  const m = ev.filter((e) => e.name === 'manual');
  assert.deepEqual(m[0].category_profile, { tool_call_id: 'c1' });
  assert.deepEqual(m[1].data, { ok: true });
  assert.equal(ev.find((e) => e.name === 'model' && e.scope_category === 'end')?.metadata['otel.status_description'], 'upstream down');
});

test('stacks, fork and propagation', async () => {
  const rec = recorder();
  const root = baton.push('root');
  const ctx = baton.propagationContext();
  assert.equal(ctx.parent_uuid, root.uuid);
  assert.match(baton.traceparent(), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  const forked = baton.fork();
  forked.run(() => baton.withScope('child', () => {}));
  const remote = baton.stackFromPropagation(ctx);
  remote.run(() => baton.withScope('remote-child', () => {}));
  const fresh = baton.newStack();
  assert.throws(() => fresh.run(() => baton.traceparent()), (e) => e instanceof baton.BatonError && e.code === 'invalid_state');
  assert.equal(fresh.depth, 0);
  baton.pop(root);
  const ev = await rec.done();
  assert.equal(ev.find((e) => e.name === 'child')?.parent_uuid, root.uuid);
  assert.equal(ev.find((e) => e.name === 'remote-child')?.parent_uuid, root.uuid);
});

test('subscribers run on the JS thread; re-entrant flush is invalid_state; failures are counted', async () => {
  /** @type {unknown[]} */
  const errors = [];
  const before = baton.diagnostics().subscriberFailures;
  baton.subscribe('reentrant', (e) => {
    if (e.name !== 'probe') return;
    try {
      baton.toolSync('nested', {}, () => 1);
    } catch (err) {
      errors.push(err);
    }
    baton.flush().catch((err) => errors.push(err));
    baton.mark('from-subscriber');
  });
  baton.subscribe('failing', () => { throw new Error('subscriber failure'); });
  baton.mark('probe');
  assert.equal(await baton.flush(), true);
  await new Promise((r) => setImmediate(r));
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e instanceof baton.BatonError && e.code === 'invalid_state'));
  // The mark the subscriber emitted was queued during that delivery: a second flush delivers it.
  assert.equal(await baton.flush(), true);
  baton.deregister('subscriber', 'reentrant');
  baton.deregister('subscriber', 'failing');
  assert.ok(baton.diagnostics().subscriberFailures >= before + 2);
  assert.throws(() => baton.register('subscriber', 'dup', () => {}) ?? baton.register('subscriber', 'dup', () => {}), (e) => e instanceof baton.BatonError && e.code === 'already_exists');
  baton.deregister('subscriber', 'dup');
});

test('events are delivered without flush (the event loop is not blocked)', async () => {
  /** @type {AtofEvent[]} */
  const got = [];
  baton.subscribe('eventually', (e) => { got.push(e); });
  baton.mark('soon');
  for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  baton.deregister('subscriber', 'eventually');
  assert.equal(got[0]?.name, 'soon');
});
