// The wasm package from Node, for real: the optimized module under dist/ (npm run build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
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

test('CommonJS and ESM give the same module instance', () => {
  const cjs = createRequire(import.meta.url)('../dist/index.cjs');
  assert.equal(cjs.push, baton.push);
  assert.deepEqual(baton.ERROR_KINDS.length, 10);
  assert.equal(baton.MIDDLEWARE_KINDS.length, 16);
});

test('scopes, a managed tool call and a mark form one tree', async () => {
  let result;
  const evs = await collect(() => {
    const agent = baton.push('agent', { category: 'agent', input: { q: 'hi' }, attributes: ['stateful'] });
    assert.equal(baton.currentScope().uuid, agent.uuid);
    result = baton.toolSync('add', { a: 1, b: 2 }, (args) => args.a + args.b, { toolCallId: 'c1' });
    baton.mark('thought', { data: { text: 'done' } });
    baton.pop(agent, { output: { answer: 3 } });
    assert.equal(agent.ended, true);
  });
  assert.equal(result, 3);
  assert.deepEqual(evs.map((e) => `${e.kind}:${e.name}:${e.scope_category ?? ''}`), [
    'scope:agent:start', 'scope:add:start', 'scope:add:end', 'mark:thought:', 'scope:agent:end',
  ]);
  const [agentStart, toolStart, toolEnd, mark, agentEnd] = evs;
  assert.equal(agentStart.parent_uuid, null);
  assert.equal(agentStart.category, 'agent');
  assert.deepEqual(agentStart.data, { q: 'hi' });
  assert.deepEqual(agentStart.attributes, ['stateful']);
  assert.equal(toolStart.parent_uuid, agentStart.uuid);
  assert.equal(toolStart.category, 'tool');
  assert.deepEqual(toolStart.category_profile, { tool_call_id: 'c1' });
  assert.deepEqual(toolStart.data, { a: 1, b: 2 });
  assert.equal(toolEnd.data, 3);
  assert.equal(toolEnd.metadata['otel.status_code'], 'OK');
  assert.equal(mark.parent_uuid, agentStart.uuid);
  assert.deepEqual(mark.data, { text: 'done' });
  assert.deepEqual(agentEnd.data, { answer: 3 });
  for (const e of evs) assert.equal(e.atof_version, '0.1');
});

test('timestamps come from the JS clock and ids are UUIDv7', async () => {
  const before = Date.now();
  const evs = await collect(() => baton.mark('tick'));
  const after = Date.now();
  const t = Date.parse(evs[0].timestamp);
  assert.ok(t >= before - 5 && t <= after + 5, `${evs[0].timestamp} not within [${before}, ${after}]`);
  assert.match(evs[0].timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.match(evs[0].uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const ids = new Set();
  const scopes = [];
  for (let i = 0; i < 200; i++) scopes.push(baton.push('s'));
  for (const s of scopes) ids.add(s.uuid);
  assert.equal(ids.size, 200);
  assert.equal(baton.currentStack().depth, 200);
  baton.pop(scopes[0]); // unwinds the 199 above it
  assert.equal(baton.currentStack().depth, 0);
});

test('events are delivered on a microtask without flush', async () => {
  await baton.flush();
  events.length = 0;
  baton.mark('async-delivery');
  assert.equal(events.length, 0, 'nothing is delivered synchronously');
  await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(events.map((e) => e.name), ['async-delivery']);
  events.length = 0;
});

test('tool() returns a Promise; a callback error is rethrown unchanged and ends the call with ERROR', async () => {
  assert.equal(await baton.tool('echo', 'x', (a) => `${a}!`), 'x!');
  const boom = new RangeError('boom');
  let caught;
  const evs = await collect(() => {
    try {
      baton.toolSync('bad', null, () => { throw boom; });
    } catch (e) {
      caught = e;
    }
  });
  assert.equal(caught, boom);
  const end = evs.find((e) => e.name === 'bad' && e.scope_category === 'end');
  assert.equal(end.metadata['otel.status_code'], 'ERROR');
  assert.equal(end.metadata['error.type'], 'callback_failed');
  assert.equal(end.metadata['otel.status_description'], 'boom');
  assert.equal(end.metadata['exception.type'], 'RangeError');
  assert.equal(end.data, null);
});

test('errors carry code = kind', async () => {
  const s = baton.push('once');
  baton.pop(s);
  assert.throws(() => baton.pop(s), (e) => e instanceof baton.BatonError && e.code === 'not_found' && e.kind === 'not_found');
  assert.throws(() => baton.toolSync('t', { f() {} }, () => 1), (e) => e instanceof TypeError && e.code === 'invalid_argument' && /args\.f/.test(e.message));
  assert.throws(() => baton.toolSync('t', 1, 'nope'), (e) => e.code === 'invalid_argument');
  assert.throws(() => baton.traceparent(), (e) => e.code === 'invalid_state');
  baton.subscribe('dup', () => {});
  assert.throws(() => baton.subscribe('dup', () => {}), (e) => e.code === 'already_exists');
  assert.equal(baton.deregister('subscriber', 'dup'), true);
  assert.equal(baton.deregister('subscriber', 'dup'), false);
  assert.throws(() => baton.toolSync('p', 1, async () => 1), (e) => e.code === 'invalid_state' && /Promise/.test(e.message));
});

test('a call the module refuses on entry (only subscribers registered) throws its error, emits nothing, and leaves no error behind', async () => {
  const evs = await collect(async () => {
    assert.throws(() => baton.toolSync('t', { a: 1 }, (a) => a, { toolCallId: 5 }), (e) => e instanceof baton.BatonError && e.code === 'invalid_argument' && /toolCallId/.test(e.message));
    await assert.rejects(baton.tool('t', { a: 1 }, (a) => a, { toolCallId: 5 }), (e) => e instanceof baton.BatonError && e.code === 'invalid_argument' && /toolCallId/.test(e.message));
    assert.throws(() => baton.llmSync('m', { content: 'hi' }, () => ({ content: 'ok' }), { modelName: 5 }), (e) => e instanceof baton.BatonError && e.code === 'invalid_argument' && /modelName/.test(e.message));
  });
  assert.deepEqual(evs, []);
  // The next calls enter and end normally, through the same functions.
  const after = await collect(async () => {
    assert.deepEqual(baton.toolSync('t', { a: 1 }, (a) => a), { a: 1 });
    assert.equal(await baton.tool('t', 2, async (x) => x + 1), 3);
    assert.throws(() => baton.toolSync('t', 3, () => { throw new RangeError('own'); }), (e) => e instanceof RangeError && e.message === 'own');
  });
  assert.deepEqual(after.map((e) => [e.scope_category, e.data, e.metadata?.['otel.status_code']]), [
    ['start', { a: 1 }, undefined], ['end', { a: 1 }, 'OK'], ['start', 2, undefined], ['end', 3, 'OK'], ['start', 3, undefined], ['end', null, 'ERROR'],
  ]);
});

test('guardrails, request intercepts and sanitizers run (sync)', async () => {
  baton.register('tool_conditional_execution', 'no-rm', (args) => (args.cmd === 'rm' ? { allow: false, reason: 'no rm' } : true));
  baton.register('tool_request_intercept', 'add-flag', (args) => ({ ...args, flag: true }));
  baton.register('tool_sanitize_request', 'hide', (args) => ({ ...args, secret: '***' }));
  try {
    let seen;
    const evs = await collect(() => {
      const out = baton.toolSync('sh', { cmd: 'ls', secret: 's3' }, (args) => { seen = args; return 'ok'; });
      assert.equal(out, 'ok');
    });
    assert.deepEqual(seen, { cmd: 'ls', secret: 's3', flag: true });
    const start = evs.find((e) => e.name === 'sh' && e.scope_category === 'start');
    assert.deepEqual(start.data, { cmd: 'ls', secret: '***', flag: true });
    const rejected = await collect(() => {
      assert.throws(() => baton.toolSync('sh', { cmd: 'rm' }, () => 'never'), (e) => e.code === 'guardrail_rejected' && /no rm/.test(e.message));
    });
    const rej = rejected.find((e) => e.kind === 'mark');
    assert.deepEqual(rej.data, { rejected: true, rejection_reason: 'no rm' });
  } finally {
    baton.deregister('tool_conditional_execution', 'no-rm');
    baton.deregister('tool_request_intercept', 'add-flag');
    baton.deregister('tool_sanitize_request', 'hide');
  }
});

test('stacks: withScope, runWithStack, fork, propagation', async () => {
  const evs = await collect(() => {
    const root = baton.push('root');
    const child = baton.fork();
    baton.runWithStack(child, () => baton.mark('in-fork'));
    const inner = baton.withScope('ws', (scope) => {
      assert.equal(baton.currentScope().uuid, scope.uuid);
      return 7;
    });
    assert.equal(inner, 7);
    const ctx = baton.propagationContext();
    assert.equal(ctx.version, 1);
    assert.equal(ctx.parent_uuid, root.uuid);
    assert.match(baton.traceparent(), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const remote = baton.stackFromPropagation(ctx);
    remote.run(() => baton.mark('remote'));
    baton.pop(root);
  });
  const root = evs.find((e) => e.name === 'root');
  for (const n of ['in-fork', 'ws', 'remote']) {
    assert.equal(evs.find((e) => e.name === n).parent_uuid, root.uuid, n);
  }
});

test('a throwing subscriber is counted; others still receive the event', async () => {
  const before = baton.diagnostics().subscriberFailures;
  baton.subscribe('thrower', () => { throw new Error('sub'); });
  const evs = await collect(() => baton.mark('m'));
  baton.deregister('subscriber', 'thrower');
  assert.deepEqual(evs.map((e) => e.name), ['m']);
  assert.equal(baton.diagnostics().subscriberFailures, before + 1);
});

test('llm calls strip credential headers from events; the callback still sees them', async () => {
  let seen;
  const evs = await collect(() => {
    const out = baton.llmSync('chat', { headers: { Authorization: 'Bearer k', 'x-trace': '1' }, content: { messages: [] } }, (req) => {
      seen = req;
      return { text: 'hi' };
    }, { modelName: 'm1' });
    assert.deepEqual(out, { text: 'hi' });
  });
  assert.equal(seen.headers.Authorization, 'Bearer k');
  const start = evs.find((e) => e.name === 'chat' && e.scope_category === 'start');
  assert.equal(start.category, 'llm');
  assert.deepEqual(start.category_profile, { model_name: 'm1' });
  assert.deepEqual(start.data.headers, { 'x-trace': '1' });
});

test('sync execution intercepts: retry through next(), queued marks after the end event', async () => {
  let attempts = 0;
  baton.register('tool_execution_intercept', 'retry', (args, next, ctx) => {
    assert.equal(ctx.info.name, 'flaky');
    ctx.queueMark('retried', { data: { n: 1 } });
    try {
      return next();
    } catch {
      return next({ ...args, second: true });
    }
  }, { sync: true });
  try {
    const evs = await collect(() => {
      const out = baton.toolSync('flaky', { a: 1 }, (args) => {
        attempts++;
        if (!args.second) throw new Error('first try fails');
        return 'ok';
      });
      assert.equal(out, 'ok');
    });
    assert.equal(attempts, 2);
    assert.deepEqual(evs.map((e) => `${e.kind}:${e.name}`), ['scope:flaky', 'scope:flaky', 'mark:retried']);
    assert.equal(evs[2].parent_uuid, evs[0].uuid);
  } finally {
    baton.deregister('tool_execution_intercept', 'retry');
  }
});

test('manual lifecycle, standalone helpers and codecs', async () => {
  const evs = await collect(() => {
    const h = baton.toolStart('manual', { x: 1 }, { toolCallId: 'm' });
    baton.toolEnd(h, { result: { y: 2 } });
    assert.throws(() => h.end(), (e) => e.code === 'not_found');
    assert.deepEqual(baton.toolRequestInterceptsSync('t', { a: 1 }), { a: 1 }); // nothing registered: unchanged
  });
  assert.deepEqual(evs.map((e) => `${e.name}:${e.scope_category}`), ['manual:start', 'manual:end']);
  assert.deepEqual(evs[1].data, { y: 2 });
  const req = { model: 'claude-3-5-haiku-latest', max_tokens: 5, system: 'x', messages: [{ role: 'user', content: 'hi' }] };
  const norm = baton.codecs.decodeRequest('auto', req);
  assert.notEqual(norm, null);
  assert.equal(typeof norm, 'object');
  assert.equal(baton.codecs.decodeRequest('auto', { nothing: true }), null);
});

test('LLM streams are pulled lazily; chunk marks; leaving early cancels', async () => {
  let pulled = 0;
  function* chunks() {
    for (const c of ['a', 'b', 'c']) {
      pulled++;
      yield { delta: c };
    }
  }
  const evs = await collect(() => {
    const s = baton.llmStreamSync('gen', { content: {} }, () => chunks());
    assert.equal(pulled, 0);
    assert.deepEqual([...s].map((c) => c.delta), ['a', 'b', 'c']);
  });
  assert.deepEqual(evs.map((e) => `${e.kind}:${e.name}`), ['scope:gen', 'mark:llm.chunk', 'mark:llm.chunk', 'mark:llm.chunk', 'scope:gen']);
  assert.deepEqual(evs[4].data, [{ delta: 'a' }, { delta: 'b' }, { delta: 'c' }]);
  const cancelled = await collect(async () => {
    const s = await baton.llmStream('gen2', { content: {} }, () => chunks(), { chunkMarks: false });
    for await (const c of s) {
      assert.equal(c.delta, 'a');
      break;
    }
  });
  const end = cancelled.find((e) => e.scope_category === 'end');
  assert.equal(end.metadata['error.type'], 'cancelled');
});

test('plugins: validate is pure; file exporters cannot activate without a file system', () => {
  assert.ok(Array.isArray(baton.plugins.validate({ version: 1, components: [] })));
});

test('tool() and llm() accept Promise-returning callbacks; the scope spans the await', async () => {
  const evs = await collect(async () => {
    const out = await baton.tool('slow', { n: 2 }, async (args) => {
      await new Promise((r) => setTimeout(r, 5));
      return args.n * 10;
    });
    assert.equal(out, 20);
    const resp = await baton.llm('chat', { content: { q: 1 } }, () => Promise.resolve({ a: 1 }));
    assert.deepEqual(resp, { a: 1 });
    await assert.rejects(baton.tool('rej', null, async () => { throw new RangeError('late'); }), (e) => e instanceof RangeError && e.message === 'late');
  });
  assert.deepEqual(evs.map((e) => `${e.name}:${e.scope_category}`), ['slow:start', 'slow:end', 'chat:start', 'chat:end', 'rej:start', 'rej:end']);
  assert.equal(evs[1].data, 20);
  assert.ok(Date.parse(evs[1].timestamp) - Date.parse(evs[0].timestamp) >= 4, 'the end event comes after the await');
  assert.equal(evs[5].metadata['error.type'], 'callback_failed');
});

test('the module exports exactly what index.d.ts declares (the Node surface plus init and sinks)', async () => {
  const { readFileSync } = await import('node:fs');
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const declared = new Set([...dts.matchAll(/^export (?:declare )?(?:function|const|class) (\w+)/gm)].map((m) => m[1]));
  const exported = new Set(Object.keys(baton).filter((k) => k !== 'default'));
  assert.deepEqual([...declared].filter((n) => !exported.has(n)), [], 'declared but not exported');
  assert.deepEqual([...exported].filter((n) => !declared.has(n)), [], 'exported but not declared');
  for (const k of ['registerSink', 'deregisterSink', 'validate', 'initialize', 'clear']) assert.equal(typeof baton.plugins[k], 'function');
});
