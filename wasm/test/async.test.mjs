// Promise-returning middleware in the async call forms, async chunk sources, async standalone
// helpers, and what a Promise inside a synchronous call does (invalid_state, never a hang).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../dist/index.mjs';

const events = [];
baton.subscribe('collect', (e) => events.push(e));

async function collect(fn) {
  await baton.flush();
  events.length = 0;
  await fn();
  await baton.flush();
  return events.splice(0);
}

const tick = () => new Promise((r) => setTimeout(r, 1));
const names = (evs) => evs.map((e) => `${e.kind}:${e.name}:${e.scope_category ?? ''}`);

test('Promise guardrails and request intercepts run in tool(); their scopes span the await', async () => {
  baton.register('tool_conditional_execution', 'slow-guard', async (args) => {
    await tick();
    return args.path === '/' ? { allow: false, reason: 'not /' } : true;
  });
  baton.register('tool_request_intercept', 'slow-rewrite', async (args) => {
    await tick();
    return { ...args, rewritten: true };
  });
  try {
    let seen;
    const evs = await collect(async () => {
      const out = await baton.tool('ls', { path: '/tmp' }, async (a) => { seen = a; await tick(); return 'listing'; });
      assert.equal(out, 'listing');
    });
    assert.deepEqual(seen, { path: '/tmp', rewritten: true });
    assert.deepEqual(names(evs), ['scope:slow-guard:start', 'scope:slow-guard:end', 'scope:ls:start', 'scope:ls:end']);
    assert.deepEqual(evs[2].data, { path: '/tmp', rewritten: true });

    const rej = await collect(async () => {
      await assert.rejects(baton.tool('rm', { path: '/' }, () => 'never'), (e) => e.code === 'guardrail_rejected' && e.detail.reason === 'not /');
    });
    assert.deepEqual(names(rej), ['scope:slow-guard:start', 'scope:slow-guard:end', 'mark:rm:']);
    assert.deepEqual(rej[2].data, { rejected: true, rejection_reason: 'not /' });

    // The same Promise middleware inside a synchronous call cannot be awaited: invalid_state.
    assert.throws(() => baton.toolSync('ls', { path: '/tmp' }, () => 'x'), (e) => e.code === 'invalid_state' && /use the async form/.test(e.message));
    await baton.toolConditionalExecution('ls', { path: '/tmp' });
    await assert.rejects(baton.toolConditionalExecution('rm', { path: '/' }), (e) => e.code === 'guardrail_rejected');
    assert.deepEqual(await baton.toolRequestIntercepts('ls', { path: '/a' }), { path: '/a', rewritten: true });
  } finally {
    baton.deregister('tool_conditional_execution', 'slow-guard');
    baton.deregister('tool_request_intercept', 'slow-rewrite');
  }
});

test('a rejected middleware Promise fails the call closed, with the thrown value', async () => {
  const boom = new RangeError('guard is down');
  baton.register('tool_conditional_execution', 'down', async () => { await tick(); throw boom; });
  try {
    let ran = false;
    await assert.rejects(baton.tool('t', {}, () => { ran = true; }), (e) => e === boom);
    assert.equal(ran, false);
  } finally {
    baton.deregister('tool_conditional_execution', 'down');
  }
});

test('async execution intercepts: await next() several times, replace, and next() after return', async () => {
  let attempts = 0;
  let savedNext;
  baton.register('tool_execution_intercept', 'retry', async (args, next, ctx) => {
    savedNext = next;
    ctx.queueMark('attempting', { data: { name: ctx.info.name } });
    for (let i = 0; ; i++) {
      try {
        return await next({ ...args, attempt: i });
      } catch (e) {
        if (i >= 2) throw e;
        await tick();
      }
    }
  });
  baton.register('tool_execution_intercept', 'cache', async (args, next) => (args.cached ? 'from cache' : next()), { priority: 10 });
  try {
    const evs = await collect(async () => {
      const out = await baton.tool('flaky', { q: 1 }, async (a) => {
        attempts++;
        await tick();
        if (a.attempt < 2) throw new Error(`try ${a.attempt}`);
        return `ok after ${a.attempt}`;
      });
      assert.equal(out, 'ok after 2');
    });
    assert.equal(attempts, 3);
    assert.deepEqual(names(evs), ['scope:flaky:start', 'scope:flaky:end', 'mark:attempting:']);
    assert.equal(evs[1].metadata['otel.status_code'], 'OK');
    assert.equal(await baton.tool('flaky', { cached: true }, () => 'callback'), 'from cache');
    await assert.rejects(savedNext({}), (e) => e.code === 'invalid_state' && /after its execution intercept returned/.test(e.message));
    // An async intercept cannot wrap a synchronous call.
    assert.throws(() => baton.toolSync('flaky', {}, () => 1), (e) => e.code === 'invalid_state');
  } finally {
    baton.deregister('tool_execution_intercept', 'retry');
    baton.deregister('tool_execution_intercept', 'cache');
  }
});

test('a sync execution intercept in an async call: next() returns the value; a Promise callback under it is invalid_state', async () => {
  baton.register('tool_execution_intercept', 'sync-wrap', (args, next) => ({ wrapped: next(args) }), { sync: true });
  try {
    assert.deepEqual(await baton.tool('t', { a: 1 }, (a) => a.a + 1), { wrapped: 2 });
    await assert.rejects(baton.tool('t', { a: 1 }, async (a) => a.a), (e) => e.code === 'invalid_state');
  } finally {
    baton.deregister('tool_execution_intercept', 'sync-wrap');
  }
});

test('llmStream: async generators and Promises of iterables, pulled lazily; break cancels', async () => {
  const REQ = { headers: {}, content: { messages: [] } };
  let produced = 0;
  async function* gen() {
    for (let i = 0; i < 5; i++) {
      await tick();
      produced++;
      yield { delta: i };
    }
  }
  const evs = await collect(async () => {
    const s = await baton.llmStream('chat', REQ, async () => { await tick(); return gen(); });
    const got = [];
    for await (const c of s) {
      got.push(c.delta);
      if (got.length === 2) break;
    }
    assert.deepEqual(got, [0, 1]);
  });
  assert.equal(produced, 2, 'nothing is read ahead of the consumer');
  assert.deepEqual(names(evs), ['scope:chat:start', 'mark:llm.chunk:', 'mark:llm.chunk:', 'scope:chat:end']);
  assert.equal(evs[3].metadata['otel.status_code'], 'ERROR');
  assert.equal(evs[3].metadata['error.type'], 'cancelled');

  // A stream intercept over an async source: for await, edit each chunk, append one.
  baton.register('llm_stream_execution_intercept', 'upper', (chunks) => ({
    async *[Symbol.asyncIterator]() {
      for await (const c of chunks) yield { ...c, seen: true };
      yield { tail: true };
    },
  }));
  try {
    const all = [];
    for await (const c of await baton.llmStream('chat', REQ, () => gen())) all.push(c);
    assert.deepEqual(all.at(-1), { tail: true });
    assert.deepEqual(all.slice(0, 5).map((c) => c.seen && c.delta), [0, 1, 2, 3, 4]);
    // An async source cannot be read synchronously.
    assert.throws(() => [...baton.llmStreamSync('chat', REQ, () => gen())], (e) => e.code === 'invalid_state');
  } finally {
    baton.deregister('llm_stream_execution_intercept', 'upper');
  }

  // A failing async source ends the call with ERROR and rejects next() with the thrown value.
  const bad = new Error('provider dropped');
  const s = await baton.llmStream('chat', REQ, async function* () { yield 1; await tick(); throw bad; });
  assert.deepEqual(await s.next(), { value: 1, done: false });
  await assert.rejects(s.next(), (e) => e === bad);
  assert.deepEqual(await s.next(), { value: undefined, done: true });
});
