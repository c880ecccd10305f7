// The Node parity runner: executes one scenario (tests/parity/README.md) through Baton's
// public JS API — every middleware, subscriber and callback is a real JS function — and
// prints {events, subscribers, results} as JSON.
// @ts-check

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as baton from '../../../../node/index.mjs';

const RECORDER = 'parity.recorder';
const FLUSH = { timeout: 30000 };

/** @typedef {import('../../../../node/index.mjs').Json} Json */

/** @type {Map<string, Json[]>} */
const recorders = new Map();
/** @type {Map<string, any>} */
const refs = new Map();
/** @type {Record<string, unknown>} */
const results = {};
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-parity-node-'));

class RunnerError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'RunnerError';
  }
}

/** @param {string} msg */
function hostError(msg) {
  return new RunnerError(msg);
}

// ----- JSON pointers (same semantics as the Rust runner) -----

/** @param {string} ptr */
function tokens(ptr) {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw hostError(`invalid JSON pointer '${ptr}': must be empty or start with '/'`);
  return ptr.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const isObj = (/** @type {any} */ v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** @param {any} doc @param {string} ptr @param {any} value @returns {any} */
function pset(doc, ptr, value) {
  const toks = tokens(ptr);
  if (toks.length === 0) return value;
  const root = { v: doc };
  /** @type {any} */
  let holder = root;
  /** @type {string|number} */
  let key = 'v';
  for (const t of toks.slice(0, -1)) {
    let cur = holder[key];
    if (cur === null) {
      cur = {};
      holder[key] = cur;
    }
    if (Array.isArray(cur)) {
      const i = Number(t);
      if (!/^\d+$/.test(t)) throw hostError(`pointer '${ptr}': '${t}' is not an array index`);
      if (i >= cur.length) throw hostError(`pointer '${ptr}': index ${i} out of range`);
      holder = cur;
      key = i;
    } else if (isObj(cur)) {
      if (!(t in cur)) cur[t] = {};
      holder = cur;
      key = t;
    } else {
      throw hostError(`pointer '${ptr}': cannot descend into ${JSON.stringify(cur)}`);
    }
  }
  const last = toks[toks.length - 1];
  let cur = holder[key];
  if (cur === null) {
    holder[key] = { [last]: value };
  } else if (Array.isArray(cur)) {
    if (last === '-') cur.push(value);
    else {
      if (!/^\d+$/.test(last)) throw hostError(`pointer '${ptr}': '${last}' is not an array index`);
      const i = Number(last);
      if (i >= cur.length) throw hostError(`pointer '${ptr}': index ${i} out of range`);
      cur[i] = value;
    }
  } else if (isObj(cur)) {
    cur[last] = value;
  } else {
    throw hostError(`pointer '${ptr}': cannot set a field of ${JSON.stringify(cur)}`);
  }
  return root.v;
}

/** @param {any} doc @param {string} ptr */
function premove(doc, ptr) {
  const toks = tokens(ptr);
  if (toks.length === 0) return null;
  let cur = doc;
  for (const t of toks.slice(0, -1)) {
    if (Array.isArray(cur)) cur = /^\d+$/.test(t) ? cur[Number(t)] : undefined;
    else if (isObj(cur)) cur = cur[t];
    else return doc;
    if (cur === undefined) return doc;
  }
  const last = toks[toks.length - 1];
  if (Array.isArray(cur)) {
    if (/^\d+$/.test(last) && Number(last) < cur.length) cur.splice(Number(last), 1);
  } else if (isObj(cur)) {
    delete cur[last];
  }
  return doc;
}

/** @param {any} doc @param {any} edits */
function setAll(doc, edits) {
  if (!isObj(edits)) throw hostError(`expected an object of pointer edits, got ${JSON.stringify(edits)}`);
  let out = doc;
  for (const [p, v] of Object.entries(edits)) out = pset(out, p, structuredClone(v));
  return out;
}

// ----- behaviours -----

/** @param {any} imp @param {any} input */
function runImpl(imp, input) {
  for (const m of (imp && imp.marks) || []) baton.mark(m.name ?? 'mark', { data: m.data });
  if (imp && typeof imp.fail === 'string') throw hostError(imp.fail);
  if (imp && imp.echo === true) return input;
  return imp && imp.return !== undefined ? imp.return : null;
}

/** @param {any} imp */
function* implChunks(imp) {
  const chunks = (imp && imp.chunks) || [];
  if (typeof imp.fail_after === 'number') {
    const n = imp.fail_after;
    for (const c of chunks.slice(0, n)) yield c;
    throw hostError(typeof imp.fail === 'string' ? imp.fail : `stream failed after ${n} chunks`);
  }
  for (const c of chunks) yield c;
}

/** @param {any} imp */
async function* implChunksAsync(imp) {
  for (const c of implChunks(imp)) {
    await null;
    yield c;
  }
}

/** @param {any} b @param {string} name */
function decide(b, name) {
  if (typeof b.fail === 'string') throw hostError(b.fail);
  if (typeof b.reject === 'string') return { allow: false, reason: b.reject };
  if (typeof b.reject_if_name === 'string') {
    if (name === b.reject_if_name) return { allow: false, reason: b.reason ?? 'rejected' };
    return { allow: true };
  }
  return { allow: true };
}

/** @param {any} b @param {any} input */
function requestEdit(b, input) {
  if (typeof b.fail === 'string') throw hostError(b.fail);
  return b.set ? setAll(input, b.set) : input;
}

/** @param {any} b @param {baton.CallContext} ctx */
function queueMarks(b, ctx) {
  for (const m of b.marks || []) ctx.queueMark(m.name ?? 'mark', { data: m.data ?? null });
}

/**
 * @param {string} kind
 * @param {string} name
 * @param {any} b
 * @returns {any}
 */
function behaviour(kind, name, b) {
  if (!isObj(b)) throw new baton.BatonError('invalid_argument', `behavior: expected an object, got ${JSON.stringify(b)}`);
  const isAsync = b.async === true;
  switch (kind) {
    case 'tool_conditional_execution':
    case 'llm_conditional_execution':
      return isAsync
        ? async (/** @type {Json} */ _input, /** @type {baton.CallInfo} */ info) => { await null; return decide(b, info.name); }
        : (/** @type {Json} */ _input, /** @type {baton.CallInfo} */ info) => decide(b, info.name);
    case 'tool_request_intercept':
    case 'llm_request_intercept':
      return isAsync
        ? async (/** @type {Json} */ input) => { await null; return requestEdit(b, input); }
        : (/** @type {Json} */ input) => requestEdit(b, input);
    case 'tool_execution_intercept':
    case 'llm_execution_intercept':
      return isAsync ? asyncIntercept(b) : syncIntercept(b);
    case 'llm_stream_execution_intercept':
      return (/** @type {baton.ChunkSource} */ chunks) => {
        if (typeof b.fail === 'string') throw hostError(b.fail);
        const edit = (/** @type {Json} */ c) => (b.set_chunk ? setAll(c, b.set_chunk) : c);
        const tail = b.append;
        return {
          *[Symbol.iterator]() {
            for (const c of chunks) yield edit(c);
            if (tail !== undefined) yield tail;
          },
          async *[Symbol.asyncIterator]() {
            for await (const c of chunks) yield edit(c);
            if (tail !== undefined) yield tail;
          },
        };
      };
    case 'tool_sanitize_request':
    case 'tool_sanitize_response':
    case 'llm_sanitize_request':
    case 'llm_sanitize_response':
      return (/** @type {Json} */ v) => {
        if (typeof b.fail === 'string') throw hostError(b.fail);
        if (b.omit === true) return undefined;
        let out = v;
        if (b.set) out = setAll(out, b.set);
        for (const p of b.remove || []) out = premove(out, p);
        return out;
      };
    case 'mark_sanitize':
    case 'scope_sanitize_start':
    case 'scope_sanitize_end':
      return (/** @type {baton.EventFields} */ f) => {
        if (typeof b.fail === 'string') throw hostError(b.fail);
        const out = { data: f.data, metadata: f.metadata };
        if (isObj(b.set_metadata)) out.metadata = b.set_metadata;
        if (b.set_data !== undefined) out.data = b.set_data;
        return out;
      };
    case 'event_metadata_injector':
      return () => {
        if (typeof b.fail === 'string') throw hostError(b.fail);
        return isObj(b.inject) ? b.inject : {};
      };
    case 'subscriber': {
      if (typeof b.fail === 'string') {
        const msg = b.fail;
        return () => { throw hostError(msg); };
      }
      if (!recorders.has(name)) recorders.set(name, []);
      return (/** @type {Json} */ e) => { recorders.get(name)?.push(e); };
    }
    default:
      return () => null; // the native registry rejects the unknown kind
  }
}

/** What an execution intercept does before calling next. @param {any} b @param {Json} input */
function plan(b, input) {
  if (typeof b.fail === 'string') return { done: () => { throw hostError(b.fail); } };
  if (b.replace !== undefined) return { done: () => b.replace };
  if (typeof b.retry === 'number') return { retry: b.retry };
  if (typeof b.retry_on_error === 'number') return { retryOnError: b.retry_on_error };
  return { once: b.set_input ? setAll(structuredClone(input), b.set_input) : input };
}

/** @param {any} b */
function syncIntercept(b) {
  return (/** @type {Json} */ input, /** @type {(v?: Json) => Json} */ next, /** @type {baton.CallContext} */ ctx) => {
    queueMarks(b, ctx);
    let p;
    try {
      p = plan(b, input);
    } catch (e) {
      throw e;
    }
    if (p.done) return p.done();
    if (p.retry !== undefined) {
      /** @type {any} */
      let last = null;
      /** @type {any} */
      let lastErr;
      for (let i = 0; i < p.retry; i++) {
        try {
          last = next(structuredClone(input));
          lastErr = undefined;
        } catch (e) {
          lastErr = e;
        }
      }
      if (lastErr !== undefined) throw lastErr;
      return last;
    }
    if (p.retryOnError !== undefined) {
      for (let i = 0; ; i++) {
        try {
          return next(structuredClone(input));
        } catch (e) {
          if (i >= p.retryOnError) throw e;
        }
      }
    }
    const out = next(p.once);
    return b.set_result ? setAll(out, b.set_result) : out;
  };
}

/** @param {any} b */
function asyncIntercept(b) {
  return async (/** @type {Json} */ input, /** @type {(v?: Json) => Promise<Json>} */ next, /** @type {baton.CallContext} */ ctx) => {
    queueMarks(b, ctx);
    const p = plan(b, input);
    await null;
    if (p.done) return p.done();
    if (p.retry !== undefined) {
      /** @type {any} */
      let last = null;
      /** @type {any} */
      let lastErr;
      for (let i = 0; i < p.retry; i++) {
        try {
          last = await next(structuredClone(input));
          lastErr = undefined;
        } catch (e) {
          lastErr = e;
        }
      }
      if (lastErr !== undefined) throw lastErr;
      return last;
    }
    if (p.retryOnError !== undefined) {
      for (let i = 0; ; i++) {
        try {
          return await next(structuredClone(input));
        } catch (e) {
          if (i >= p.retryOnError) throw e;
        }
      }
    }
    const out = await next(p.once);
    return b.set_result ? setAll(out, b.set_result) : out;
  };
}

// ----- steps -----

/** @param {any} v @returns {any} */
function resolve(v) {
  if (Array.isArray(v)) return v.map(resolve);
  if (isObj(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === '$ref' && typeof v.$ref === 'string' && v.$ref in results) return structuredClone(results[v.$ref]);
    return Object.fromEntries(keys.map((k) => [k, resolve(v[k])]));
  }
  if (typeof v === 'string' && v.includes('${OUT}')) return v.split('${OUT}').join(outDir);
  return v;
}

/** @param {any} step @param {string} key */
function scopeRef(step, key) {
  const name = step[key];
  if (name === undefined || name === null) return undefined;
  const r = refs.get(name);
  if (!(r instanceof baton.Scope)) throw new baton.BatonError('not_found', `${key}: '${name}' does not name a scope`);
  return r;
}

/** @param {any} step */
function stackRef(step) {
  const r = refs.get(step.stack);
  if (!(r instanceof baton.Stack)) throw new baton.BatonError('not_found', `stack: '${step.stack}' does not name a stack`);
  return r;
}

/** @param {any} step */
function callRef(step) {
  const r = refs.get(step.handle);
  if (!(r instanceof baton.CallHandle)) throw new baton.BatonError('not_found', `handle: '${step.handle}' does not name a call handle`);
  return r;
}

/** @param {any} step */
function toolOptions(step) {
  return { toolCallId: step.tool_call_id, metadata: step.metadata, attributes: step.attributes, parent: scopeRef(step, 'parent') };
}

/** @param {any} step */
function llmOptions(step) {
  return {
    modelName: step.model_name,
    metadata: step.metadata,
    attributes: step.attributes,
    parent: scopeRef(step, 'parent'),
    chunkMarks: step.chunk_marks === undefined ? true : step.chunk_marks,
    codec: step.codec,
    responseCodec: step.response_codec,
  };
}

/** @param {string} pattern @param {string} name */
function wildcard(pattern, name) {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(name);
}

/** @param {string} p */
function readMatching(p) {
  const base = path.basename(p);
  let target = p;
  if (base.includes('*')) {
    const dir = path.dirname(p);
    const matches = fs.readdirSync(dir).filter((n) => wildcard(base, n));
    if (matches.length !== 1) {
      throw new baton.BatonError('invalid_argument', `path '${p}': ${matches.length === 0 ? 'no file matches' : `${matches.length} files match`}`);
    }
    target = path.join(dir, matches[0]);
  }
  try {
    return fs.readFileSync(target, 'utf8');
  } catch (e) {
    throw new baton.BatonError('invalid_argument', `path '${target}': ${/** @type {Error} */ (e).message}`);
  }
}

/** @param {any} step @returns {Promise<{value?: unknown, handle?: unknown} | undefined>} */
async function exec(step) {
  const op = step.op;
  const isAsync = step.async === true;
  switch (op) {
    case 'push':
      return {
        handle: baton.push(step.name, {
          category: step.category ?? 'function',
          input: step.input,
          metadata: step.metadata,
          attributes: step.attributes,
          categoryProfile: step.category_profile,
          parent: scopeRef(step, 'parent'),
        }),
      };
    case 'pop': {
      const s = scopeRef(step, 'scope');
      if (!s) throw new baton.BatonError('invalid_argument', 'pop: step.scope is required');
      baton.pop(s, { output: step.output, metadata: step.metadata, error: step.error === undefined ? undefined : String(step.error) });
      return undefined;
    }
    case 'mark':
      baton.mark(step.name, {
        data: step.data,
        metadata: step.metadata,
        parent: scopeRef(step, 'parent'),
        category: step.category,
        categoryProfile: step.category_profile,
        dataSchema: step.data_schema,
      });
      return undefined;
    case 'metric':
      baton.metric(step.name, step.measurements ?? null, { unit: step.unit });
      return undefined;
    case 'new_stack':
      return { handle: baton.newStack() };
    case 'fork':
      return { handle: baton.fork() };
    case 'from_propagation':
      return { handle: baton.stackFromPropagation(step.context ?? null) };
    case 'with_stack': {
      const st = stackRef(step);
      await baton.runWithStack(st, () => runSteps(step.steps || []));
      return undefined;
    }
    case 'propagation_context':
      return { value: baton.propagationContext() };
    case 'traceparent':
      return { value: baton.traceparent() };
    case 'flush':
      await baton.flush(FLUSH);
      return undefined;
    case 'shutdown':
      return { value: await baton.shutdown(FLUSH) };
    case 'diagnostics': {
      await baton.flush(FLUSH);
      const d = baton.diagnostics();
      return { value: { dropped_events: d.droppedEvents, subscriber_failures: d.subscriberFailures, middleware_failures: d.middlewareFailures } };
    }
    case 'tool': {
      const imp = step.impl ?? null;
      const args = step.args === undefined ? null : step.args;
      const value = isAsync
        ? await baton.tool(step.name, args, (a) => runImpl(imp, a), toolOptions(step))
        : baton.toolSync(step.name, args, (a) => runImpl(imp, a), toolOptions(step));
      return { value };
    }
    case 'llm': {
      const imp = step.impl ?? null;
      const request = step.request === undefined ? null : step.request;
      const value = isAsync
        ? await baton.llm(step.name, request, (r) => runImpl(imp, r), llmOptions(step))
        : baton.llmSync(step.name, request, (r) => runImpl(imp, r), llmOptions(step));
      return { value };
    }
    case 'llm_stream': {
      const imp = step.impl ?? {};
      const request = step.request === undefined ? null : step.request;
      const take = typeof step.take === 'number' ? step.take : Infinity;
      /** @type {Json[]} */
      const got = [];
      if (isAsync) {
        const stream = await baton.llmStream(step.name, request, async () => {
          await null;
          if (imp.marks) runImpl({ marks: imp.marks }, null);
          return implChunksAsync(imp);
        }, llmOptions(step));
        if (take > 0) {
          for await (const c of stream) {
            got.push(c);
            if (got.length >= take) break;
          }
        } else stream.close();
      } else {
        const stream = baton.llmStreamSync(step.name, request, () => {
          if (imp.marks) runImpl({ marks: imp.marks }, null);
          return implChunks(imp);
        }, llmOptions(step));
        if (take > 0) {
          for (const c of stream) {
            got.push(c);
            if (got.length >= take) break;
          }
        } else stream.close();
      }
      return { value: got };
    }
    case 'tool_start':
      return { handle: baton.toolStart(step.name, step.args ?? null, toolOptions(step)) };
    case 'llm_start':
      return { handle: baton.llmStart(step.name, step.request ?? null, llmOptions(step)) };
    case 'tool_end':
      baton.toolEnd(callRef(step), { result: step.result, metadata: step.metadata, error: step.error === undefined ? undefined : String(step.error) });
      return undefined;
    case 'llm_end':
      baton.llmEnd(callRef(step), { response: step.response, metadata: step.metadata, error: step.error === undefined ? undefined : String(step.error) });
      return undefined;
    case 'tool_conditional_execution':
      if (isAsync) await baton.toolConditionalExecution(step.name, step.args ?? null);
      else baton.toolConditionalExecutionSync(step.name, step.args ?? null);
      return { value: null };
    case 'llm_conditional_execution':
      if (isAsync) await baton.llmConditionalExecution(step.name, step.request ?? null);
      else baton.llmConditionalExecutionSync(step.name, step.request ?? null);
      return { value: null };
    case 'tool_request_intercepts':
      return { value: isAsync ? await baton.toolRequestIntercepts(step.name, step.args ?? null) : baton.toolRequestInterceptsSync(step.name, step.args ?? null) };
    case 'llm_request_intercepts':
      return { value: isAsync ? await baton.llmRequestIntercepts(step.name, step.request ?? null) : baton.llmRequestInterceptsSync(step.name, step.request ?? null) };
    case 'register': {
      const fn = behaviour(step.kind, step.name, step.behavior ?? {});
      const b = step.behavior ?? {};
      const sync = (step.kind === 'tool_execution_intercept' || step.kind === 'llm_execution_intercept') && b.async !== true;
      /** @type {any} */ (baton.register)(step.kind, step.name, fn, { priority: step.priority ?? 0, scope: scopeRef(step, 'scope'), breakChain: step.break_chain === true, sync });
      return undefined;
    }
    case 'deregister':
      return { value: baton.deregister(step.kind, step.name, { scope: scopeRef(step, 'scope') }) };
    case 'read_jsonl':
      return { value: readMatching(step.path).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l)) };
    case 'read_json':
      return { value: JSON.parse(readMatching(step.path)) };
    case 'plugin_validate':
      return { value: baton.plugins.validate(step.config ?? null) };
    case 'plugin_initialize':
      return { value: baton.plugins.initialize(step.config ?? null) };
    case 'plugin_clear':
      baton.plugins.clear();
      return undefined;
    case 'codec_decode_request':
      return { value: baton.codecs.decodeRequest(step.codec, step.request ?? null) };
    case 'codec_encode_request':
      return { value: baton.codecs.encodeRequest(step.codec, step.normalized ?? null, step.original ?? null) };
    case 'codec_decode_response':
      return { value: baton.codecs.decodeResponse(step.codec, step.response ?? null) };
    case 'codec_aggregate_stream':
      return { value: baton.codecs.aggregateStream(step.codec, step.chunks ?? []) };
    default:
      throw new baton.BatonError('invalid_argument', `unknown op '${op}'`);
  }
}

/** @param {unknown} e */
function kindOf(e) {
  if (e instanceof baton.BatonError) return /** @type {baton.BatonError} */ (e).code;
  return 'callback_failed';
}

/** @param {any[]} steps */
async function runSteps(steps) {
  for (let i = 0; i < steps.length; i++) {
    const step = resolve(steps[i]);
    const op = step.op ?? '<missing op>';
    const expect = step.expect_error;
    /** @type {any} */
    let stored;
    let failed = false;
    /** @type {unknown} */
    let err;
    try {
      stored = await exec(step);
    } catch (e) {
      failed = true;
      err = e;
    }
    const msg = (/** @type {unknown} */ e) => `${kindOf(e)}: ${e instanceof Error ? e.message : String(e)}`;
    if (!failed && expect !== undefined) throw new Error(`step ${i} (${op}) succeeded but expected error ${expect}`);
    if (failed) {
      if (expect === undefined) throw new Error(`step ${i} (${op}) failed: ${msg(err)}`);
      if (kindOf(err) !== expect) throw new Error(`step ${i} (${op}) failed with ${msg(err)}, expected ${expect}`);
      stored = { value: { error: expect } };
    }
    if (typeof step.as === 'string' && stored !== undefined) {
      if ('handle' in stored) {
        results[step.as] = '<handle>';
        refs.set(step.as, stored.handle);
      } else {
        results[step.as] = stored.value === undefined ? null : stored.value;
        refs.set(step.as, stored.value);
      }
    }
  }
}

async function main() {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: runner.mjs SCENARIO.json\n');
    process.exit(2);
  }
  const scenario = JSON.parse(fs.readFileSync(file, 'utf8'));
  const steps = scenario.steps;
  if (!Array.isArray(steps)) throw new Error('scenario has no steps array');
  baton.register('subscriber', RECORDER, behaviour('subscriber', RECORDER, { record: true }));
  let failure;
  try {
    await runSteps(steps);
  } catch (e) {
    failure = e;
  }
  if (!baton.isShutdown()) await baton.flush(FLUSH);
  fs.rmSync(outDir, { recursive: true, force: true });
  if (failure) throw failure;
  const events = recorders.get(RECORDER) ?? [];
  recorders.delete(RECORDER);
  process.stdout.write(JSON.stringify({ events, subscribers: Object.fromEntries(recorders), results }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`scenario failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
