// The same workloads through the reference runtime nemo-relay-node@0.9.2 (Node >= 24).
// Run by run.mjs with NODE_PATH-free resolution: the module path comes from argv[2].
import { createRequire } from 'node:module';
import { median, ARGS, CHUNKS } from './workloads.mjs';

const require = createRequire(process.argv[2]);
const r = require('nemo-relay-node');
const N = Number(process.env.BATON_BENCH_REF_N || 2000);
const out = {};
const fn = (a) => a;
const asyncPlain = async (a) => a;
const tool = (a) => ({ result: a });

out.plain_call = await median((n) => { for (let i = 0; i < n; i++) fn(ARGS); }, N * 100);
out.plain_call_awaited = await median(async (n) => { for (let i = 0; i < n; i++) await asyncPlain(ARGS); }, N * 100);
out.tool_nothing_registered = await median(async (n) => { for (let i = 0; i < n; i++) await r.toolCallExecute('search', ARGS, tool); }, N);

let events = 0;
r.registerSubscriber('bench', () => { events++; });
out.tool_one_subscriber = await median(async (n) => {
  for (let i = 0; i < n; i++) await r.toolCallExecute('search', ARGS, tool);
  await r.flushSubscribers();
}, N);

r.registerToolConditionalExecutionGuardrail('guard', 0, (name) => (name === 'rm' ? 'no' : null));
r.registerToolRequestIntercept('rewrite', 0, false, (_name, a) => a);
r.registerToolExecutionIntercept('wrap', 0, async (ctx, next) => ({ result: (await next(ctx.args)).result }));
out.tool_full_pipeline = await median(async (n) => {
  for (let i = 0; i < n; i++) await r.toolCallExecute('search', ARGS, tool);
  await r.flushSubscribers();
}, N);
r.deregisterToolExecutionIntercept('wrap');
r.deregisterToolRequestIntercept('rewrite');
r.deregisterToolConditionalExecutionGuardrail('guard');

const chunks = Array.from({ length: CHUNKS }, (_, i) => ({ delta: `token-${i}` }));
const request = { headers: {}, content: { messages: [{ role: 'user', content: 'hi' }] } };
// The reference streams by push (see its typed.js): the JS side iterates and pushes chunks.
const producer = (wrapper) => {
  const id = wrapper.__nemo_relay_stream_id;
  (async () => {
    try {
      for (const c of chunks) if (!r.pushStreamChunk(id, c)) break;
    } finally {
      r.endStream(id);
    }
  })();
};
out.llm_stream_per_chunk = await median(async (n) => {
  for (let i = 0; i < n / CHUNKS; i++) {
    const s = await r.llmStreamCallExecute('chat', request, producer, () => null, () => ({}));
    let c;
    while ((c = await s.next()) !== null) fn(c);
  }
  await r.flushSubscribers();
}, Math.max(CHUNKS, (N / 20) * CHUNKS), 5);
if (events === 0) throw new Error('the reference subscriber saw nothing');
process.stdout.write(JSON.stringify(out) + '\n');
