// Baton workloads (prints one JSON object: workload → median ns per call or per chunk).
// @ts-check
import * as baton from '../index.mjs';
import { median, ARGS, CHUNKS } from './workloads.mjs';

const N = Number(process.env.BATON_BENCH_N || 20000);
/** @type {Record<string, number>} */
const out = {};
const fn = (/** @type {baton.Json} */ a) => a;
const asyncPlain = async (/** @type {baton.Json} */ a) => a;

out.plain_call = await median((n) => { for (let i = 0; i < n; i++) fn(ARGS); }, N * 10);
out.plain_call_awaited = await median(async (n) => { for (let i = 0; i < n; i++) await asyncPlain(ARGS); }, N * 10);
out.tool_nothing_registered = await median(async (n) => { for (let i = 0; i < n; i++) await baton.tool('search', ARGS, fn); }, N);
// The same plain awaited call again, now that Baton's first call has switched AsyncLocalStorage
// on: on Node 20 that installs promise hooks, which every await in the process pays from then on
// (Node 24's AsyncLocalStorage has none). The target above is measured without them.
out.plain_call_awaited_als = await median(async (n) => { for (let i = 0; i < n; i++) await asyncPlain(ARGS); }, N * 10);
out.tool_sync_nothing_registered = await median((n) => { for (let i = 0; i < n; i++) baton.toolSync('search', ARGS, fn); }, N);

let events = 0;
baton.subscribe('bench', () => { events++; });
out.tool_one_subscriber = await median(async (n) => {
  for (let i = 0; i < n; i++) await baton.tool('search', ARGS, fn);
  await baton.flush();
}, N);
out.tool_sync_one_subscriber = await median(async (n) => {
  for (let i = 0; i < n; i++) baton.toolSync('search', ARGS, fn);
  await baton.flush();
}, N);

baton.register('tool_conditional_execution', 'guard', (_a, info) => info.name !== 'rm');
baton.register('tool_request_intercept', 'rewrite', (a) => a);
baton.register('tool_execution_intercept', 'wrap', (a, next) => next(a));
out.tool_full_pipeline = await median(async (n) => {
  for (let i = 0; i < n; i++) await baton.tool('search', ARGS, fn);
  await baton.flush();
}, N);
baton.deregister('tool_execution_intercept', 'wrap');
baton.register('tool_execution_intercept', 'wrap', (a, next) => next(a), { sync: true });
out.tool_sync_full_pipeline = await median(async (n) => {
  for (let i = 0; i < n; i++) baton.toolSync('search', ARGS, fn);
  await baton.flush();
}, N);
baton.deregister('tool_execution_intercept', 'wrap');
baton.deregister('tool_request_intercept', 'rewrite');
baton.deregister('tool_conditional_execution', 'guard');

const chunks = Array.from({ length: CHUNKS }, (_, i) => ({ delta: `token-${i}` }));
const request = { headers: {}, content: { messages: [{ role: 'user', content: 'hi' }] } };
out.llm_stream_per_chunk = await median(async (n) => {
  for (let i = 0; i < n / CHUNKS; i++) {
    const s = await baton.llmStream('chat', request, async function* () { for (const c of chunks) yield c; });
    for await (const c of s) fn(c);
  }
  await baton.flush();
}, (N / 10) * CHUNKS);
out.llm_stream_sync_per_chunk = await median(async (n) => {
  for (let i = 0; i < n / CHUNKS; i++) {
    for (const c of baton.llmStreamSync('chat', request, () => chunks)) fn(c);
  }
  await baton.flush();
}, (N / 10) * CHUNKS);
if (events === 0) throw new Error('the subscriber saw nothing');
process.stdout.write(JSON.stringify(out) + '\n');
